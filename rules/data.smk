# Stage 1, data preparation: corpus -> tokenizer -> fixed-length samples (docs/protocol.md "Data").


rule tokenizer:
    output:
        directory(f"{R}/{{family}}/tokenizer"),
    params:
        cfg=CONFIG_JSON,
        data=PRETRAIN_DATA,
        tokenizer=tokenizer_cfg,
        seed=SEED,  # the document split the tokenizer trains on is seeded
    log:
        f"{R}/logs/{{family}}/tokenizer.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/tokenizer.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem tokenizer --config {params.cfg} --family {wildcards.family} --out {output} --log {log}"


rule prepare:
    input:
        tokenizer_input,
    output:
        train=f"{R}/{{family}}/{{dataset}}/data/train.parquet",
        val=f"{R}/{{family}}/{{dataset}}/data/val.parquet",
        stats=f"{R}/{{family}}/{{dataset}}/data/data_stats.json",
    params:
        cfg=CONFIG_JSON,
        data=dataset_cfg,
        tokenizer=tokenizer_of,
        seed=SEED,
    log:
        f"{R}/logs/{{family}}/{{dataset}}/prepare.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/prepare.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem prepare --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --tokenizer {params.tokenizer} --out-train {output.train} --out-val {output.val}"
        " --out-stats {output.stats} --log {log}"


rule prepare_pretrain:
    input:
        tokenizer_input,
    output:
        pretrain=f"{R}/{{family}}/pretrain/pretrain.parquet",
        stats=f"{R}/{{family}}/pretrain/data_stats.json",
    params:
        cfg=CONFIG_JSON,
        dataset=CFG["pretrain"]["dataset"],
        data=PRETRAIN_DATA,
        max_tokens=CFG["pretrain"]["max_tokens"],
        tokenizer=tokenizer_of,
        seed=SEED,
    log:
        f"{R}/logs/{{family}}/prepare_pretrain.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/prepare_pretrain.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem prepare --config {params.cfg} --family {wildcards.family} --dataset {params.dataset}"
        " --tokenizer {params.tokenizer} --out-pretrain {output.pretrain} --out-stats {output.stats} --log {log}"
