# Stage 5, distillation: the soft student (forward KL at T from the cache, x T^2; or another loss,
# or another view of the teacher: distill.soft.cache) and the hard student (CE on teacher-generated
# text), both from the small base.
STUDENT = "student-{kd}-s{seed}"  # model_name's soft-student form; {kd} is kd_tag(T, loss): T2.0, T2.0-jsd


rule distill_soft:
    input:
        tokenizer_input,
        bases_needed(Size.SMALL),
        cache=soft_cache,
        teacher=L.model(model=TEACHER),
        train=L.samples(split="train"),
        val=L.samples(split="val"),
    output:
        directory(L.model(model=STUDENT)),
    params:
        cfg=sliced("distill", fixed={"mode": "soft"}, family="family"),
        kd=kd_options,
        cache=cache_option,
        base=base_path(Size.SMALL),
        tokenizer=tokenizer_of,
        ckpt=L.checkpoints(model=STUDENT),
        removal="",  # distill_cleaned: --removal <the classifier's predictions>
    log:
        L.log(f"distill-{STUDENT}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark(f"distill-{STUDENT}", "{family}", "{dataset}")
    priority: CRITICAL_PATH
    threads: 1
    resources:
        **job(mem_mb=6000, runtime=240, gpu=True),
    conda:
        ENV
    shell:
        "kdmem distill --mode soft --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} {params.kd} --base {params.base}"
        " --tokenizer {params.tokenizer} {params.cache} --teacher {input.teacher} {params.removal}"
        " --train {input.train} --val {input.val} --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"


HARD_STUDENT = model_name(Role.HARD_STUDENT, "{seed}")


rule distill_hard:
    input:
        tokenizer_input,
        bases_needed(Size.SMALL),
        train=L.hard_samples(),
        val=L.samples(split="val"),
    output:
        directory(L.model(model=HARD_STUDENT)),
    params:
        cfg=sliced("distill", fixed={"mode": "hard"}, family="family"),
        base=base_path(Size.SMALL),
        tokenizer=tokenizer_of,
        ckpt=L.checkpoints(model=HARD_STUDENT),
    log:
        L.log(f"distill-{HARD_STUDENT}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark(f"distill-{HARD_STUDENT}", "{family}", "{dataset}")
    priority: LONG_JOB
    threads: 1
    resources:
        **job(mem_mb=6000, runtime=240, gpu=True),
    conda:
        ENV
    shell:
        "kdmem distill --mode hard --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} --base {params.base} --tokenizer {params.tokenizer}"
        " --train {input.train} --val {input.val} --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"
