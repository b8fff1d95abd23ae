# Stage 1, data preparation: corpus -> tokenizer -> fixed-length samples (docs/protocol.md "Data").


rule tokenizer:
    output:
        directory(L.tokenizer()),
    params:
        cfg=sliced("tokenizer", family="family"),
    log:
        L.log("tokenizer", "{family}"),
    benchmark:
        L.benchmark("tokenizer", "{family}")
    threads: 1
    resources:
        **job(mem_mb=2000, runtime=30),
    conda:
        ENV
    shell:
        "kdmem tokenizer --config-json {params.cfg:q} --family {wildcards.family} --out {output} --log {log}"


rule prepare:
    input:
        tokenizer_input,
    output:
        train=L.samples(split="train"),
        val=L.samples(split="val"),
        heldout=L.samples(split="heldout"),
        stats=L.data_stats(),
    params:
        cfg=sliced("prepare", dataset="dataset"),
        tokenizer=tokenizer_of,
    log:
        L.log("prepare", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("prepare", "{family}", "{dataset}")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60),
    conda:
        ENV
    shell:
        "kdmem prepare --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --tokenizer {params.tokenizer} --out-train {output.train} --out-val {output.val}"
        " --out-heldout {output.heldout}"
        " --out-stats {output.stats} --log {log}"


rule prepare_pretrain:
    input:
        tokenizer_input,
    output:
        pretrain=L.pretrain_samples(),
        stats=L.pretrain_stats(),
    params:
        cfg=sliced("prepare_pretrain"),
        dataset=PRETRAIN_DATASET,
        tokenizer=tokenizer_of,
    log:
        L.log("prepare_pretrain", "{family}"),
    benchmark:
        L.benchmark("prepare_pretrain", "{family}")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60),
    conda:
        ENV
    shell:
        "kdmem prepare --config-json {params.cfg:q} --family {wildcards.family} --dataset {params.dataset}"
        " --tokenizer {params.tokenizer} --out-pretrain {output.pretrain} --out-stats {output.stats} --log {log}"
