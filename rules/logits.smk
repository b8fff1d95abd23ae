# Stage 4, teacher logit cache: one pass of the fine-tuned teacher over D, top-k + tail at each T.


rule cache_logits:
    input:
        tokenizer_input,
        teacher=f"{R}/{{family}}/{{dataset}}/models/teacher-s{SEED}",
        train=f"{R}/{{family}}/{{dataset}}/data/train.parquet",
    output:
        directory(f"{R}/{{family}}/{{dataset}}/cache/T{{temperature}}"),
    params:
        cfg=CONFIG_JSON,
        top_k=CFG["distill"]["soft"]["top_k"],
        tokenizer=tokenizer_of,
    log:
        f"{R}/logs/{{family}}/{{dataset}}/cache-T{{temperature}}.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/cache-T{{temperature}}.tsv"
    threads: 1  # CPU: two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured); a GPU job needs no more
    resources:
        mem_mb=6000,
        runtime=120,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem cache-logits --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --teacher {input.teacher} --tokenizer {params.tokenizer} --train {input.train}"
        " --temperature {wildcards.temperature} --out {output} --log {log}"


rule generate_hard:
    input:
        tokenizer_input,
        teacher=f"{R}/{{family}}/{{dataset}}/models/teacher-s{SEED}",
        train=f"{R}/{{family}}/{{dataset}}/data/train.parquet",
    output:
        f"{R}/{{family}}/{{dataset}}/data/hard.parquet",
    params:
        cfg=CONFIG_JSON,
        hard_prefix_len=CFG["distill"]["hard"]["prefix_len"],
        tokenizer=tokenizer_of,
    log:
        f"{R}/logs/{{family}}/{{dataset}}/generate-hard.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/generate-hard.tsv"
    threads: 1  # CPU: two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured); a GPU job needs no more
    resources:
        mem_mb=6000,
        runtime=120,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem generate-hard --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --teacher {input.teacher} --tokenizer {params.tokenizer} --train {input.train} --out {output} --log {log}"
