# Stage 7, analysis: the memorization classifier, the removal experiment (re-distill on cleaned D,
# re-score), the DuckDB store, the analyses and the report.


rule classify:
    input:
        teacher=f"{R}/{{family}}/{{dataset}}/scores/teacher-s{SEED}/train.parquet",
        baseline=f"{R}/{{family}}/{{dataset}}/scores/{PRIMARY_BASELINE}/train.parquet",
        student=f"{R}/{{family}}/{{dataset}}/scores/{PRIMARY_STUDENT}/train.parquet",
    output:
        summary=f"{R}/{{family}}/{{dataset}}/analysis/classifier.json",
        trials=f"{R}/{{family}}/{{dataset}}/analysis/classifier_trials.parquet",
        coefficients=f"{R}/{{family}}/{{dataset}}/analysis/classifier_coefficients.parquet",
        predictions=f"{R}/{{family}}/{{dataset}}/analysis/predictions.parquet",
        roc=f"{R}/{{family}}/{{dataset}}/analysis/roc.png",
    params:
        cfg=CONFIG_JSON,
        classifier=CFG["classifier"],
    log:
        f"{R}/logs/{{family}}/{{dataset}}/classify.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/classify.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem classify --config {params.cfg} --family {wildcards.family} --dataset {wildcards.dataset}"
        " --teacher-scores {input.teacher} --baseline-scores {input.baseline} --student-scores {input.student}"
        " --out {output.summary} --out-trials {output.trials} --out-coefficients {output.coefficients}"
        " --out-predictions {output.predictions} --out-roc {output.roc} --log {log}"


# The removal experiment's student: distill_soft on D minus the predicted-memorized samples.
use rule distill_soft as distill_cleaned with:
    input:
        tokenizer_input,
        small_base_input,
        cache=f"{R}/{{family}}/{{dataset}}/cache/T{{temperature}}",
        teacher=f"{R}/{{family}}/{{dataset}}/models/teacher-s{SEED}",
        train=f"{R}/{{family}}/{{dataset}}/data/train.parquet",
        val=f"{R}/{{family}}/{{dataset}}/data/val.parquet",
        predictions=f"{R}/{{family}}/{{dataset}}/analysis/predictions.parquet",
    output:
        directory(f"{R}/{{family}}/{{dataset}}/models/student-T{{temperature}}-s{{seed}}-cleaned"),
    params:
        cfg=CONFIG_JSON,
        soft=CFG["distill"]["soft"],
        base=small_base,
        tokenizer=tokenizer_of,
        ckpt=f"{R}/{{family}}/{{dataset}}/checkpoints/student-T{{temperature}}-s{{seed}}-cleaned",
        removal=removal_arg,
    log:
        f"{R}/logs/{{family}}/{{dataset}}/distill-student-T{{temperature}}-s{{seed}}-cleaned.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/{{dataset}}/distill-student-T{{temperature}}-s{{seed}}-cleaned.tsv"


rule build_db:
    input:
        **db_inputs(),
    output:
        f"{R}/kdmem.duckdb",
    params:
        cfg=CONFIG_JSON,
        primary=PRIMARY,
        metrics=metrics_files,
    log:
        f"{R}/logs/build_db.log",
    benchmark:
        f"{R}/benchmarks/build_db.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem build-db --config {params.cfg} --out {output} --samples {input.samples} --models {params.metrics}"
        " --bases {input.bases}"
        " --scores {input.scores} --trials {input.trials} --coefficients {input.coefficients}"
        " --predictions {input.predictions} --primary {params.primary} --log {log}"


rule analyze:
    input:
        db=f"{R}/kdmem.duckdb",
        classifier=pair_files("{R}/{f}/{d}/analysis/classifier.json"),
    output:
        f"{R}/report/analysis.json",
    params:
        cfg=CONFIG_JSON,
        analysis=CFG["analysis"],
        out_dir=output_folder,
    log:
        f"{R}/logs/analyze.log",
    benchmark:
        f"{R}/benchmarks/analyze.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem analyze --config {params.cfg} --db {input.db} --classifier {input.classifier}"
        " --out-dir {params.out_dir} --log {log}"


rule report:
    input:
        analysis=f"{R}/report/analysis.json",
        roc=pair_files("{R}/{f}/{d}/analysis/roc.png"),
    output:
        f"{R}/report/report.html",
    log:
        f"{R}/logs/report.log",
    benchmark:
        f"{R}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem report --analysis {input.analysis} --roc {input.roc} --out {output} --log {log}"
