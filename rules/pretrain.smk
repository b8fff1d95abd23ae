# Stage 2, base models (embedded family only): pretrain GPT-NeoX bases from scratch with CE on the
# pretraining split, so fine-tuning starts from "pretrained checkpoints" as in the paper.


rule pretrain:
    input:
        tokenizer=f"{R}/{{family}}/tokenizer",
        train=f"{R}/{{family}}/pretrain/pretrain.parquet",
        val=pretrain_val,
    output:
        directory(f"{R}/{{family}}/base/{{size}}"),
    params:
        cfg=CONFIG_JSON,
        optim=lambda w: kconfig.pretrain_optim(CFG, w.size),
        arch=pretrain_arch,
        seed=SEED,
        ckpt=f"{R}/{{family}}/checkpoints/base-{{size}}",
    log:
        f"{R}/logs/{{family}}/pretrain-{{size}}.log",
    benchmark:
        f"{R}/benchmarks/{{family}}/pretrain-{{size}}.tsv"
    threads: 1  # CPU: two 1-thread jobs train ~1.5x the tokens/s of one 2-thread job (measured); a GPU job needs no more
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    conda:
        "../envs/kdmem.yaml"
    shell:
        "kdmem pretrain --config {params.cfg} --family {wildcards.family} --size {wildcards.size}"
        " --tokenizer {input.tokenizer} --train {input.train} --val {input.val}"
        " --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"
