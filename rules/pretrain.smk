# Stage 2, base models (scratch families only): pretrain GPT-NeoX (or Llama) bases from scratch with CE on the
# pretraining split, so fine-tuning starts from "pretrained checkpoints" as in the paper.


rule pretrain:
    input:
        tokenizer_input,  # a trained tokenizer; a family may instead name one (hub or folder), as two-families.yaml does
        train=L.pretrain_samples(),
        val=lambda w: L.samples(w.family, PRETRAIN_DATASET, "val"),
    output:
        directory(L.scratch_base()),
    params:
        cfg=sliced("pretrain", family="family", size="size"),
        ckpt=L.base_checkpoints(),
        tokenizer=tokenizer_of,
    log:
        L.log("pretrain-{size}", "{family}"),
    benchmark:
        L.benchmark("pretrain-{size}", "{family}")
    threads: 1
    resources:
        **job(mem_mb=4000, runtime=120, gpu=True),
    conda:
        ENV
    shell:
        "kdmem pretrain --config-json {params.cfg:q} --family {wildcards.family} --size {wildcards.size}"
        " --tokenizer {params.tokenizer} --train {input.train} --val {input.val}"
        " --out {output} --ckpt {params.ckpt} --nproc {resources.gpu} --log {log}"
