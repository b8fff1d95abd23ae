# Stage 7, analysis: the memorization classifier, the removal experiment (re-distill on the cleaned D,
# re-score), membership inference per model (beyond the paper), the DuckDB store, the analyses and the report.


rule classify:
    input:
        teacher=L.scores(model=TEACHER, split="train"),
        baseline=L.scores(model=PRIMARY_BASELINE, split="train"),
        student=L.scores(model=PRIMARY_STUDENT, split="train"),
    output:
        summary=L.classifier(),
        trials=L.classifier_trials(),
        coefficients=L.classifier_coefficients(),
        predictions=L.predictions(),
        roc=L.roc(),
    params:
        cfg=sliced("classify"),
    log:
        L.log("classify", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("classify", "{family}", "{dataset}")
    priority: CRITICAL_PATH
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60),
    conda:
        ENV
    shell:
        "kdmem classify --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --teacher-scores {input.teacher} --baseline-scores {input.baseline} --student-scores {input.student}"
        " --out {output.summary} --out-trials {output.trials} --out-coefficients {output.coefficients}"
        " --out-predictions {output.predictions} --out-roc {output.roc} --log {log}"


CLEANED_STUDENT = f"{STUDENT}-{DataVariant.CLEANED}"


# The removal experiment's student: distill_soft on D minus the classifier's predicted samples.
use rule distill_soft as distill_cleaned with:
    input:
        tokenizer_input,
        bases_needed(Size.SMALL),
        cache=soft_cache,
        teacher=L.model(model=TEACHER),
        train=L.samples(split="train"),
        val=L.samples(split="val"),
        predictions=L.predictions(),
    output:
        directory(L.model(model=CLEANED_STUDENT)),
    params:
        cfg=sliced("distill", fixed={"mode": "soft"}, family="family"),
        kd=kd_options,
        cache=cache_option,
        base=base_path(Size.SMALL),
        tokenizer=tokenizer_of,
        ckpt=L.checkpoints(model=CLEANED_STUDENT),
        removal=lambda w, input: f"--removal {input.predictions}",
    log:
        L.log(f"distill-{CLEANED_STUDENT}", "{family}", "{dataset}"),
    benchmark:
        L.benchmark(f"distill-{CLEANED_STUDENT}", "{family}", "{dataset}")


rule mia:
    input:
        scores=mia_scores_inputs,
        train=L.samples(split="train"),
        val=L.samples(split="val"),
        heldout=L.samples(split="heldout"),
    output:
        mia=L.mia(),
        scores=L.mia_scores(),
    params:
        cfg=sliced("mia", family="family"),
    log:
        L.log("mia", "{family}", "{dataset}"),
    benchmark:
        L.benchmark("mia", "{family}", "{dataset}")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60),
    conda:
        ENV
    shell:
        "kdmem mia --config-json {params.cfg:q} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --scores {input.scores} --train {input.train} --val {input.val} --heldout {input.heldout}"
        " --out {output.mia} --out-scores {output.scores} --log {log}"


rule build_db:
    input:
        **db_inputs(),
    output:
        L.db(),
    params:
        cfg=sliced("build_db"),
        primary=PRIMARY,
        metrics=lambda w, input: " ".join(f"{m}/metrics.json" for m in input.models),
    log:
        L.log("build_db"),
    benchmark:
        L.benchmark("build_db")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60),
    conda:
        ENV
    shell:
        "kdmem build-db --config-json {params.cfg:q} --out {output} --samples {input.samples} --models {params.metrics}"
        " --bases {input.bases}"
        " --scores {input.scores} --trials {input.trials} --coefficients {input.coefficients}"
        " --predictions {input.predictions} --mia {input.mia} --mia-scores {input.mia_scores} --primary {params.primary} --log {log}"


rule analyze:
    input:
        db=L.db(),
        classifier=per_pair(L.classifier),
    output:
        L.analysis(),
    params:
        cfg=sliced("analyze"),
        # the results folder from the input, not the config: where the store is, the figures go beside it
        results=lambda w, input: Layout.of("db", input.db).results,
    log:
        L.log("analyze"),
    benchmark:
        L.benchmark("analyze")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=60),
    conda:
        ENV
    shell:
        "kdmem analyze --config-json {params.cfg:q} --db {input.db} --classifier {input.classifier}"
        " --results {params.results:q} --log {log}"


rule report:
    input:
        analysis=L.analysis(),
        classifier=per_pair(L.classifier),
        roc=per_pair(L.roc),
    output:
        L.report(),
    params:
        results=lambda w, input: Layout.of("analysis", input.analysis).results,
    log:
        L.log("report"),
    benchmark:
        L.benchmark("report")
    threads: 1
    resources:
        **job(mem_mb=2000, runtime=30),
    conda:
        ENV
    shell:
        "kdmem report --results {params.results:q} --classifier {input.classifier} --roc {input.roc} --out {output} --log {log}"
