# Stage 5, distillation: the soft student (forward KL at T from the cache, x T^2) and the hard
# student (CE on teacher-generated text), both from the small base.


rule distill_soft:
    input:
        tokenizer_input,
        small_base_input,
        cache=f"{R}/{{family}}/{{dataset}}/cache/T{{temperature}}",
        teacher=f"{R}/{{family}}/{{dataset}}/models/teacher-s{SEED}",
        train=f"{R}/{{family}}/{{dataset}}/data/train.parquet",
        val=f"{R}/{{family}}/{{dataset}}/data/val.parquet",
    output:
        directory(f"{R}/{{family}}/{{dataset}}/models/student-T{{temperature}}-s{{seed}}"),
    params:
        cfg=CONFIG_JSON,
        soft=CFG["distill"]["soft"],
        base=small_base,
        tokenizer=tokenizer_of,
        ckpt=f"{R}/{{family}}/{{dataset}}/checkpoints/student-T{{temperature}}-s{{seed}}",
        removal="",  # distill_cleaned: --drop <the classifier's predictions>
    log:
        f"{R}/logs/{{family}}/{{dataset}}/distill-student-T{{temperature}}-s{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/distill-student-T{{temperature}}-s{{seed}}.tsv"
    threads: 1  # CPU: two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured); a GPU job needs no more
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem distill --mode soft --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} --temperature {wildcards.temperature} --base {params.base}"
        " --tokenizer {params.tokenizer} --cache {input.cache} --teacher {input.teacher} {params.removal}"
        " --train {input.train} --val {input.val} --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"


rule distill_hard:
    input:
        tokenizer_input,
        small_base_input,
        train=f"{R}/{{family}}/{{dataset}}/data/hard.parquet",
        val=f"{R}/{{family}}/{{dataset}}/data/val.parquet",
    output:
        directory(f"{R}/{{family}}/{{dataset}}/models/hard_student-s{{seed}}"),
    params:
        cfg=CONFIG_JSON,
        hard=CFG["distill"]["hard"],
        base=small_base,
        tokenizer=tokenizer_of,
        ckpt=f"{R}/{{family}}/{{dataset}}/checkpoints/hard_student-s{{seed}}",
    log:
        f"{R}/logs/{{family}}/{{dataset}}/distill-hard_student-s{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/distill-hard_student-s{{seed}}.tsv"
    threads: 1  # CPU: two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured); a GPU job needs no more
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem distill --mode hard --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} --base {params.base} --tokenizer {params.tokenizer}"
        " --train {input.train} --val {input.val} --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"
