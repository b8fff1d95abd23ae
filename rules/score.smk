# Stage 6, memorization scoring: every model on every training sample (and validation and held-out documents, as the
# non-member control): exact, frac, tf_acc, suffix log-prob, ppl, entropy, zlib, kl_to_teacher.
# One job per model scores both splits: one process start and one model load instead of two
# (the job's fixed cost was most of its time on the embedded default; reports/benchmarks.md).


rule score:
    input:
        tokenizer_input,
        model=L.model(),
        train=L.samples(split="train"),
        val=L.samples(split="val"),
        heldout=L.samples(split="heldout"),
        teacher=L.model(model=TEACHER),
        cache=L.cache(temperature=KL_T),  # kl_to_teacher of the train split; validation is not cached
    output:
        train=L.scores(split="train"),
        val=L.scores(split="val"),
        heldout=L.scores(split="heldout"),
        train_summary=L.score_summary(split="train"),
        val_summary=L.score_summary(split="val"),
        heldout_summary=L.score_summary(split="heldout"),
    params:
        cfg=sliced("score", family="family", size=lambda w: size_of_model(w.model)),
        tokenizer=tokenizer_of,
    log:
        L.log("score-{model}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("score-{model}", "{family}", "{dataset}")
    priority: score_priority
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=120, gpu=True),
    conda:
        ENV
    shell:
        "kdmem score --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --model {input.model} --tokenizer {params.tokenizer} --split train val heldout"
        " --samples {input.train} {input.val} {input.heldout}"
        " --cache {input.cache} --teacher {input.teacher} --out {output.train} {output.val} {output.heldout}"
        " --summary {output.train_summary} {output.val_summary} {output.heldout_summary} --log {log}"


# The base-model control: both starting checkpoints scored on D and validation with the same scorer, as
# models of role `base` (base-large, base-small). A sample a fine-tune "memorizes" that its own base
# already reproduces is predictable text, not memorization (memorization_rates.newly_memorized).
rule score_base:
    input:
        tokenizer_input,
        lambda w: base_input(w.family, w.size),
        train=L.samples(split="train"),
        val=L.samples(split="val"),
        heldout=L.samples(split="heldout"),
    output:
        train=L.scores(model="base-{size}", split="train"),
        val=L.scores(model="base-{size}", split="val"),
        heldout=L.scores(model="base-{size}", split="heldout"),
        train_summary=L.score_summary(model="base-{size}", split="train"),
        val_summary=L.score_summary(model="base-{size}", split="val"),
        heldout_summary=L.score_summary(model="base-{size}", split="heldout"),
    params:
        cfg=sliced("score", family="family", size="size"),
        tokenizer=tokenizer_of,
        base=lambda w: base_of(w.family, w.size),
    log:
        L.log("score-base-{size}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("score-base-{size}", "{family}", "{dataset}")
    priority: score_priority
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=120, gpu=True),
    conda:
        ENV
    shell:
        "kdmem score --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --model {params.base} --base-size {wildcards.size} --tokenizer {params.tokenizer} --split train val heldout"
        " --samples {input.train} {input.val} {input.heldout} --out {output.train} {output.val} {output.heldout}"
        " --summary {output.train_summary} {output.val_summary} {output.heldout_summary} --log {log}"
