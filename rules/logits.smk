# Stage 4, the teacher's outputs: the logit cache (one pass over D, top-k + tail or sampled ids at each T) and the
# greedy continuations the hard student trains on.


rule cache_logits:
    input:
        tokenizer_input,
        teacher=L.model(model=TEACHER),
        train=L.samples(split="train"),
    output:
        directory(L.cache()),
    params:
        **cache_params(CacheKind.TOPK),
    log:
        L.log("cache-T{temperature}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("cache-T{temperature}", "{family}", "{dataset}")
    priority: CRITICAL_PATH
    threads: 1
    resources:
        **job(mem_mb=6000, runtime=120, gpu=True),
    conda:
        ENV
    shell:
        "kdmem cache-logits --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --teacher {input.teacher} --tokenizer {params.tokenizer} --train {input.train}"
        " --temperature {wildcards.temperature} --kind {params.kind} --out {output} --log {log}"


# distill.soft.cache: sampled. The student's cache holds ids drawn from the teacher at T instead of
# its top k (kdmem.logit_cache); the kl_to_teacher feature keeps its top-k cache at T = 1.
use rule cache_logits as cache_logits_sampled with:
    output:
        directory(L.sampled_cache()),
    params:
        **cache_params(CacheKind.SAMPLED),
    log:
        L.log("cache-sampled-T{temperature}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("cache-sampled-T{temperature}", "{family}", "{dataset}")


# distill.soft.cache: full. The teacher's whole distribution at T, for exact distillation from a cache.
use rule cache_logits as cache_logits_full with:
    output:
        directory(L.full_cache()),
    params:
        **cache_params(CacheKind.FULL),
    log:
        L.log("cache-full-T{temperature}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("cache-full-T{temperature}", "{family}", "{dataset}")


rule generate_hard:
    input:
        tokenizer_input,
        teacher=L.model(model=TEACHER),
        train=L.samples(split="train"),
    output:
        L.hard_samples(),
    params:
        cfg=sliced("generate_hard", family="family"),
        tokenizer=tokenizer_of,
    log:
        L.log("generate-hard", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("generate-hard", "{family}", "{dataset}")
    priority: LONG_JOB
    threads: 1
    resources:
        **job(mem_mb=6000, runtime=120, gpu=True),
    conda:
        ENV
    shell:
        "kdmem generate-hard --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --teacher {input.teacher} --tokenizer {params.tokenizer} --train {input.train} --out {output} --log {log}"
