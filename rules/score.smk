# Stage 6, memorization scoring: every model on every training sample (and validation, as the
# non-member control): exact, frac, tf_acc, suffix log-prob, ppl, entropy, zlib, kl_to_teacher.


rule score:
    input:
        tokenizer_input,
        model=f"{R}/{{family}}/{{dataset}}/models/{{model}}",
        samples=f"{R}/{{family}}/{{dataset}}/data/{{split}}.parquet",
        teacher=f"{R}/{{family}}/{{dataset}}/models/teacher-s{SEED}",
        cache=score_cache_input,
    output:
        scores=f"{R}/{{family}}/{{dataset}}/scores/{{model}}/{{split}}.parquet",
        summary=f"{R}/{{family}}/{{dataset}}/scores/{{model}}/{{split}}.json",
    params:
        cfg=CONFIG_JSON,
        memorization=CFG["memorization"],
        tokenizer=tokenizer_of,
        cache=score_cache_arg,
    log:
        f"{R}/logs/{{family}}/{{dataset}}/score-{{model}}-{{split}}.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/score-{{model}}-{{split}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem score --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --model {input.model} --tokenizer {params.tokenizer} --samples {input.samples} --split {wildcards.split}"
        " {params.cache} --out {output.scores} --summary {output.summary} --log {log}"
