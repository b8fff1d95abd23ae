# Stage 3, fine-tuning: the teacher (large) and the baselines (small, several seeds) on D with CE.


rule finetune:
    input:
        tokenizer_input,
        finetune_base_input,
        train=f"{R}/{{family}}/{{dataset}}/data/train.parquet",
        val=f"{R}/{{family}}/{{dataset}}/data/val.parquet",
    output:
        directory(f"{R}/{{family}}/{{dataset}}/models/{{role}}-s{{seed}}"),
    params:
        cfg=CONFIG_JSON,
        optim=finetune_optim,
        base=finetune_base,
        tokenizer=tokenizer_of,
        ckpt=f"{R}/{{family}}/{{dataset}}/checkpoints/{{role}}-s{{seed}}",
    log:
        f"{R}/logs/{{family}}/{{dataset}}/finetune-{{role}}-s{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/finetune-{{role}}-s{{seed}}.tsv"
    threads: 1  # CPU: two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured); a GPU job needs no more
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem finetune --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --role {wildcards.role} --seed {wildcards.seed} --base {params.base} --tokenizer {params.tokenizer}"
        " --train {input.train} --val {input.val} --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"


rule evaluate_bases:
    input:
        tokenizer_input,
        both_bases_input,
        val=f"{R}/{{family}}/{{dataset}}/data/val.parquet",
        stats=f"{R}/{{family}}/{{dataset}}/data/data_stats.json",
    output:
        f"{R}/{{family}}/{{dataset}}/bases.json",
    params:
        cfg=CONFIG_JSON,
        teacher_base=teacher_base,
        small_base=small_base,
        tokenizer=tokenizer_of,
    log:
        f"{R}/logs/{{family}}/{{dataset}}/evaluate-bases.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/evaluate-bases.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem evaluate-bases --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --tokenizer {params.tokenizer} --teacher-base {params.teacher_base} --small-base {params.small_base}"
        " --val {input.val} --stats {input.stats} --out {output} --log {log}"
