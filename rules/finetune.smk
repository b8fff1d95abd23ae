# Stage 3, fine-tuning: the teacher (large) and the baselines (small, several seeds) on D with CE.


rule finetune:
    input:
        tokenizer_input,
        lambda w: base_input(w.family, SIZE_OF_ROLE[w.role]),
        train=L.samples(split="train"),
        val=L.samples(split="val"),
    output:
        directory(L.model(model=model_name("{role}", "{seed}"))),
    params:
        cfg=sliced("finetune", family="family", role="role"),
        base=lambda w: base_of(w.family, SIZE_OF_ROLE[w.role]),
        tokenizer=tokenizer_of,
        ckpt=L.checkpoints(model=model_name("{role}", "{seed}")),
        role="{role}",
        variant="",
    log:
        L.log("finetune-{role}-s{seed}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("finetune-{role}-s{seed}", "{family}", "{dataset}")
    priority: finetune_priority
    threads: 1
    resources:
        **job(mem_mb=6000, runtime=240, gpu=True),
    conda:
        ENV
    shell:
        "kdmem finetune --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --role {params.role} {params.variant} --seed {wildcards.seed} --base {params.base} --tokenizer {params.tokenizer}"
        " --train {input.train} --val {input.val} --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"


# The control baseline (finetune.once_seen_baseline): the first baseline seed on D's once-seen samples alone.
use rule finetune as finetune_once with:
    input:
        tokenizer_input,
        bases_needed(Size.SMALL),
        train=L.samples(split="train"),
        val=L.samples(split="val"),
    output:
        directory(L.model(model=model_name(Role.BASELINE, "{seed}", variant=DataVariant.ONCE))),
    params:
        cfg=sliced("finetune", family="family", fixed={"role": Role.BASELINE.value}),
        base=base_path(Size.SMALL),
        tokenizer=tokenizer_of,
        ckpt=L.checkpoints(model=model_name(Role.BASELINE, "{seed}", variant=DataVariant.ONCE)),
        role=Role.BASELINE.value,
        variant="--once-seen",
    log:
        L.log("finetune-baseline-s{seed}-once", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("finetune-baseline-s{seed}-once", "{family}", "{dataset}")


rule evaluate_bases:
    input:
        tokenizer_input,
        bases_needed(*Size),
        val=L.samples(split="val"),
        stats=L.data_stats(),
    output:
        L.bases_json(),
    params:
        cfg=sliced("evaluate_bases", family="family"),
        large_base=base_path(Size.LARGE),
        small_base=base_path(Size.SMALL),
        tokenizer=tokenizer_of,
    log:
        L.log("evaluate-bases", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("evaluate-bases", "{family}", "{dataset}")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60, gpu=True),
    conda:
        ENV
    shell:
        "kdmem evaluate-bases --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --tokenizer {params.tokenizer} --large-base {params.large_base} --small-base {params.small_base}"
        " --val {input.val} --stats {input.stats} --out {output} --log {log}"
