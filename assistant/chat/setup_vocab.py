"""The vocabularies the problem card is read with (assistant/chat/problem.py), in one place: generic
architecture families, GPU families, frameworks, precisions, data nouns and units, and the cues that
tell a statement about the user's setup from a question. Never keyed to particular questions: add a
family here and every phrasing that names it is understood.
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------------------------------
# Vocabularies: generic families and units, never particular questions. Each entry is
# (pattern, canonical spelling); a pattern's named group `v` (a variant: "-50", "-base", " v8")
# is appended to the canonical name.
# --------------------------------------------------------------------------------------------------

ARCHITECTURES: list[tuple[str, str]] = [
    (r"resnet[- ]?(?P<v>\d{2,3})?", "ResNet"),
    (r"resnext[- ]?(?P<v>\d{2,3})?", "ResNeXt"),
    (r"wide[- ]resnet", "Wide ResNet"),
    (r"vgg[- ]?(?P<v>1[169])?", "VGG"),
    (r"efficientnet(?:[- ]?(?P<v>b\d|v2))?", "EfficientNet"),
    (r"mobilenet(?:[- ]?(?P<v>v\d))?", "MobileNet"),
    (r"densenet[- ]?(?P<v>\d{3})?", "DenseNet"),
    (r"inception(?:[- ]?(?P<v>v\d))?", "Inception"),
    (r"xception", "Xception"),
    (r"convnext", "ConvNeXt"),
    (r"vision transformers?", "ViT"),
    (r"vit(?:[- ](?P<v>[bslh](?:/\d+)?|base|large|huge))?", "ViT"),
    (r"swin(?: transformer)?", "Swin Transformer"),
    (r"u-?net", "U-Net"),
    (r"yolo(?:[- ]?(?P<v>v?\d+))?", "YOLO"),
    (r"mask r-?cnn", "Mask R-CNN"),
    (r"faster r-?cnn", "Faster R-CNN"),
    (r"distilbert", "DistilBERT"),
    (r"roberta(?:[- ](?P<v>base|large))?", "RoBERTa"),
    (r"deberta(?:[- ](?P<v>v3|base|large))?", "DeBERTa"),
    (r"bert(?:[- ](?P<v>base|large|tiny|small|mini))?", "BERT"),
    (r"gpt[- ]?(?P<v>2|j|neo(?:x)?|\d(?:\.\d)?)", "GPT-"),
    (r"t5(?:[- ](?P<v>small|base|large))?", "T5"),
    (r"llama[- ]?(?P<v>[23](?:\.\d)?)?", "LLaMA"),
    (r"mistral", "Mistral"),
    (r"mixtral", "Mixtral"),
    (r"falcon", "Falcon"),
    (r"qwen[- ]?(?P<v>\d(?:\.\d)?)?", "Qwen"),
    (r"gemma[- ]?(?P<v>\d)?", "Gemma"),
    (r"whisper", "Whisper"),
    (r"wav2vec ?2?(?:\.0)?", "wav2vec 2.0"),
    (r"clip", "CLIP"),
    (r"stable diffusion", "Stable Diffusion"),
    (r"bi-?lstms?", "BiLSTM"),
    (r"lstms?", "LSTM"),
    (r"grus?", "GRU"),
    (r"rnns?|recurrent (?:neural )?net(?:work)?s?", "RNN"),
    (r"cnns?|convnets?|convolutional (?:neural )?net(?:work)?s?", "CNN"),
    (r"mlps?|multi-?layer perceptrons?", "MLP"),
    (r"variational auto-?encoders?|vaes?", "VAE"),
    (r"auto-?encoders?", "autoencoder"),
    (r"gans?|generative adversarial net(?:work)?s?", "GAN"),
    (r"diffusion models?", "diffusion model"),
    (r"gnns?|gcns?|graph (?:neural|convolutional) net(?:work)?s?", "GNN"),
    (r"transformers?(?= model| encoder| decoder|\b(?! library))", "Transformer"),
    (r"llms?|language models?", "language model"),
]
# "a 7B model", "a 350M-parameter model": the size alone names the model's scale
SIZED_MODEL = r"(?P<size>\d+(?:\.\d+)?\s?[BM])(?:-parameter|\s+param(?:eter)?s?)?\s+(?:model|network|net)\b"

GPUS: list[tuple[str, str]] = [
    (r"(?:nvidia |geforce )*rtx ?(?P<v>[2-5]0[5-9]0)(?: ?(?P<ti>ti|super))?", "RTX "),
    (r"(?:nvidia |geforce )*gtx ?(?P<v>\d{3,4})(?: ?(?P<ti>ti))?", "GTX "),
    (r"(?:nvidia )?rtx ?a(?P<v>\d{4})", "RTX A"),
    (r"(?:nvidia )?(?P<v>[ahlv]100|h200|a[0-9]{2,4}g?|t4|l4|l40s?|p100|k80|p40)", ""),
    (r"titan(?: (?P<v>rtx|v|xp?))?", "Titan"),
    (r"(?:amd )?radeon(?: rx)? ?(?P<v>\d{4})(?: ?(?P<ti>xtx?))?", "Radeon RX "),
    (r"(?:amd )?(?:instinct )?mi ?(?P<v>\d{3}x?)", "AMD MI"),
    (r"tpu(?: ?(?P<v>v\d))?", "TPU"),
    (
        r"(?:apple )?(?:macbook(?: pro| air)? )?m(?P<v>[1-4])(?: (?P<ti>pro|max|ultra))?"
        r"(?: mac(?:book)?(?: pro| air)?)?(?= |$|[,.;)])",
        "Apple M",
    ),
    (r"(?:google )?colab(?: pro)?", "Google Colab"),
]
CPU_ONLY = r"cpu[- ]only|only (?:a |the |my )?cpus?|on (?:the |a |my )?cpu\b|no gpu|without (?:a )?gpu"
COUNT_WORDS = {"single": 1, "one": 1, "two": 2, "dual": 2, "three": 3, "four": 4, "eight": 8}

FRAMEWORKS: list[tuple[str, str]] = [
    (r"pytorch[- ]lightning|lightning", "PyTorch Lightning"),
    (r"tensorflow ?/ ?keras|tf ?/ ?keras|tf\.keras", "TensorFlow/Keras"),
    (r"pytorch|torch\b", "PyTorch"),
    (r"tensorflow|\btf2?\b", "TensorFlow"),
    (r"keras", "Keras"),
    (r"jax", "JAX"),
    (r"flax", "Flax"),
    (
        r"hugging ?face(?: transformers| trainer)?|\bhf (?:transformers|trainer)|transformers library",
        "Hugging Face Transformers",
    ),
    (r"fast\.?ai", "fastai"),
    (r"mxnet", "MXNet"),
    (r"paddle(?:paddle)?", "PaddlePaddle"),
    (r"deepspeed", "DeepSpeed"),
    (r"(?:hf |hugging ?face )?accelerate\b(?= library|$|[,.;)])", "Accelerate"),
]

PRECISIONS: list[tuple[str, str]] = [
    (r"mixed[- ]precision|\bamp\b|autocast", "mixed precision"),
    (r"bf16|bfloat16", "bf16"),
    (r"fp16|float16|half[- ]precision", "fp16"),
    (r"fp32|float32|full[- ]precision|single[- ]precision", "fp32"),
    (r"int8|8-bit|8 bit", "8-bit"),
    (r"int4|4-bit|4 bit|qlora", "4-bit"),
]

# What data is counted in: "50k images", "10,000 samples", "3 hours of audio", "2 GB of text".
DATA_NOUNS = (
    r"images?|pictures?|photos?|samples?|examples?|data ?points?|rows?|records?|sentences?|documents?|"
    r"docs|texts?|tokens?|words?|reviews?|tweets?|videos?|frames?|clips?|(?:audio )?files?|"
    r"utterances?|pairs?|scans?|slides?|patients?|instances?|observations?|sequences?|series|signals?"
)
NUM = r"\d[\d,]*(?:\.\d+)?\s?(?:k|m|thousand|million|billion|b)?"
DATA = re.compile(
    r"\b(?P<gb>\d+(?:\.\d+)?\s?(?:tb|gb|mb))\s+(?:of\s+)?(?:\w+\s+)?(?P<noun3>text|data|images|audio|video|corpus|dataset)\b"
    rf"|\b(?P<n2>{NUM})\s+hours?\s+of\s+(?:\w+\s+)?(?P<noun2>audio|speech|video|recordings?)\b"
    rf"|(?<![\w.,-])(?P<n>{NUM})\s+(?:(?!(?:on|in|of|with|for|per|from|and|to)\b)[\w-]+\s+){{0,2}}?"
    rf"(?P<noun>{DATA_NOUNS})\b",
    re.I,
)
CLASSES = re.compile(
    r"\b(\d[\d,]*)\s+(?:different |distinct |target |output )?(classes|labels|categories)\b", re.I
)

MEMORY = re.compile(r"\b(?P<n>\d+(?:\.\d+)?)\s?(?P<unit>gb|gib|g|mb|tb)\b(?P<after>(?:\s+\w+){0,3})", re.I)
MEMORY_AFTER = re.compile(
    r"^\s+(?:of\s+)?(?:(?:gpu|graphics|video|system|unified|device)\s+)?(vram|ram|memory|gpu|card)", re.I
)
MEMORY_BEFORE = re.compile(r"(vram|ram|memory|gpu|card|graphics)\b[\w\s:=,]{0,16}$", re.I)
DATA_AFTER = re.compile(
    r"^\s+(?:of\s+)?(?:\w+\s+)?(text|data|images|audio|video|corpus|dataset|files|checkpoints?|weights)\b",
    re.I,
)

BATCH = re.compile(
    r"\b(?:(?:mini-?|micro-?|effective |global |per-device )?batch(?:[ _-]?size)?|bs)"
    r"\s*(?:of|=|:|is|was|to|at)?\s*(?:set to\s*|around\s*|about\s*)?(?P<n>\d{1,5})\b"
    r"|\b(?P<n2>\d{1,5})\s+(?:\w+\s+)?(?:per|a|each) (?:batch|step|device|gpu)\b",
    re.I,
)

FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|i'd|my|me|mine|we|we're|we've|our|us)\b", re.I)
POSSESSIVE = re.compile(r"\b(my|our)\b(?:\s+[\w.-]+){0,3}\s*$", re.I)
COMPARISON = re.compile(r"\b(or|vs\.?|versus|than|instead of|compared (?:to|with)|between)\b", re.I)
FROM_TO = re.compile(r"\bfrom\b.+\bto\b", re.I)
CHOICE_FIELDS = {"model", "batch_size", "precision"}  # often asked about hypothetically
