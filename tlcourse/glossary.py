"""The course's English–Chinese glossary: one entry per term, with where the course teaches it.

Notebook 15 prints it as a table and its exercise checks translations against it; the
test suite checks that every notebook named here exists. Chinese terms follow the usage
of the Chinese machine-learning literature (e.g. 周志华《机器学习》, the Chinese edition of
*Dive into Deep Learning* 《动手学深度学习》); where the seed articles of this course use a
term loosely, ``note`` says so.

>>> lookup("fine-tuning").zh
'微调'
>>> lookup("微调").en
'fine-tuning'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """A glossary entry: English term, Chinese term(s) (the first is the usual one), meaning."""

    en: str
    zh: str
    meaning: str
    notebook: str  # where the course teaches it: "01", "05", ...
    alternatives: tuple[str, ...] = ()
    note: str = ""


TERMS: tuple[Term, ...] = (
    Term("transfer learning", "迁移学习", "reusing what a model learned on a source task or domain to learn a "
         "target task or domain with less data or compute", "01"),
    Term("domain", "域", "a feature space and the distribution of inputs over it: D = {X, P(X)}", "01",
         ("领域",)),
    Term("task", "任务", "a label space and the function to learn: T = {Y, f}", "01"),
    Term("source domain", "源域", "where the knowledge comes from: D_s, usually with many labels", "01"),
    Term("target domain", "目标域", "where it is used: D_t, with few or no labels", "01"),
    Term("negative transfer", "负迁移", "the source makes the target worse than learning from scratch", "12"),
    Term("pre-training", "预训练", "training a model on the source task before reusing it", "03"),
    Term("pretrained model", "预训练模型", "a model whose weights were learned on a source task", "03"),
    Term("training from scratch", "从头训练", "training with random initial weights, without a source", "01",
         ("从零训练",)),
    Term("fine-tuning", "微调", "continuing to train some or all of a pretrained model's weights on the target, "
         "usually with a small learning rate", "05"),
    Term("feature extraction", "特征提取", "using a frozen pretrained network to compute features for a new "
         "classifier", "04"),
    Term("feature extractor", "特征提取器", "the part of a network that maps inputs to features (all but the head)",
         "04"),
    Term("freezing", "冻结", "excluding weights from training (requires_grad_(False) / trainable = False)", "04"),
    Term("classification head", "分类头", "the last layer(s) that map features to class scores; replaced for a "
         "new task", "04"),
    Term("linear probe", "线性探针", "a linear classifier trained on frozen features, to measure what they "
         "encode", "03"),
    Term("parameter transfer", "参数迁移", "the target model starts from the source model's weights", "01",
         note="the seed articles call this 基于模型的迁移学习 (model-based transfer)"),
    Term("feature-based transfer", "基于特征的迁移", "source and target are mapped to a shared feature space", "01"),
    Term("structure transfer", "结构迁移", "reusing an architecture (the design), without its weights", "06"),
    Term("layer transfer", "层迁移", "copying the first n layers of a source network, frozen or fine-tuned", "06"),
    Term("co-adaptation", "协同适应", "neighbouring layers that only work together; splitting them between "
         "frozen and retrained hurts (Yosinski et al. 2014)", "06"),
    Term("feature fusion", "特征融合", "combining source and target features: sum, product, max, concatenation",
         "07"),
    Term("regularization", "正则化", "a penalty or constraint that limits how a model fits its training data",
         "08"),
    Term("weight decay", "权重衰减", "shrinking every weight toward 0 each step; with plain SGD the same as an "
         "L2 penalty, with Adam not (decoupled decay, AdamW)", "08"),
    Term("L2-SP", "L2-SP 正则化", "an L2 penalty toward the source weights, λ Σ‖w − w_s‖², instead of toward 0 "
         "(Li et al. 2018)", "08", ("起点正则化",)),
    Term("catastrophic forgetting", "灾难性遗忘", "losing the source task while training on the target", "08"),
    Term("loss function", "损失函数", "the quantity training minimises, e.g. cross-entropy", "02"),
    Term("cross-entropy", "交叉熵", "−log of the probability the model gives the true class, averaged", "02"),
    Term("empirical risk", "经验风险", "the average loss over the training examples", "02"),
    Term("gradient descent", "梯度下降", "stepping the weights against the gradient of the loss", "02"),
    Term("stochastic gradient descent", "随机梯度下降", "gradient descent on the loss of a random mini-batch "
         "(SGD)", "02"),
    Term("momentum", "动量", "a running sum of past gradients that smooths and speeds up descent", "02"),
    Term("adaptive learning rate", "自适应学习率", "a per-weight step size scaled by past gradients (Adam, "
         "RMSProp)", "02",
         note="not a learning-rate schedule (学习率调度): the seed articles use 动态学习率 for both"),
    Term("learning rate", "学习率", "the size of each gradient step", "02"),
    Term("discriminative learning rates", "分层学习率", "smaller learning rates for earlier layers when "
         "fine-tuning", "05", ("差异化学习率",)),
    Term("batch normalization", "批归一化", "normalising activations with batch statistics in training and "
         "moving averages in inference", "05", ("批量归一化",)),
    Term("label budget", "标注预算", "how many labelled target examples there are (here: per class)", "03"),
    Term("few-shot learning", "小样本学习", "learning from a handful of labelled examples per class", "03",
         ("少样本学习",)),
    Term("learning curve", "学习曲线", "accuracy as a function of the number of training labels", "14"),
    Term("confidence interval", "置信区间", "a range that covers the true mean with a stated probability", "14"),
    Term("cross-validation", "交叉验证", "rotating which part of the labelled data is held out for testing", "14"),
    Term("domain shift", "域偏移", "source and target inputs are distributed differently", "13",
         ("领域偏移", "分布偏移")),
    Term("domain adaptation", "域自适应", "learning a target domain with no (or few) labels, from a labelled "
         "source", "13", ("领域自适应",)),
    Term("maximum mean discrepancy", "最大均值差异", "a distance between two distributions via the means of "
         "their kernel features (MMD)", "13"),
    Term("gradient reversal layer", "梯度反转层", "the identity forward, −λ × the gradient backward; trains "
         "features to fool a domain classifier (DANN)", "13"),
    Term("spectrogram", "频谱图", "a signal's energy per frequency band over time; here log-mel", "10",
         ("声谱图",)),
    Term("modality", "模态", "the kind of input: images, sound, text", "10"),
    Term("sentence embedding", "句向量", "a fixed-length vector that represents a sentence", "11",
         ("句子嵌入",)),
    Term("ablation", "消融实验", "removing one component to measure what it contributes", "15"),
)


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    return re.sub(r"[\s\-_]+", " ", text)


def lookup(term: str) -> Term:
    """The entry for an English or Chinese term (case, spacing and hyphens do not matter)."""
    key = _norm(term)
    for t in TERMS:
        if key in {_norm(t.en), _norm(t.zh), *map(_norm, t.alternatives)}:
            return t
    raise KeyError(f"{term!r} is not in the course glossary")


def accepts(en: str, zh: str) -> bool:
    """Whether ``zh`` is an accepted Chinese term for the English term ``en``."""
    t = lookup(en)
    return _norm(zh) in {_norm(t.zh), *map(_norm, t.alternatives)}


def table(notebooks: dict[str, str] | None = None):
    """The glossary as a pandas DataFrame sorted by English term.

    ``notebooks`` maps a two-digit number to a notebook title for the "where" column.
    """
    import pandas as pd

    rows = [{"English": t.en, "中文": " / ".join((t.zh, *t.alternatives)), "meaning": t.meaning,
             "where": (notebooks or {}).get(t.notebook, t.notebook), "note": t.note} for t in TERMS]
    return pd.DataFrame(rows).sort_values("English", key=lambda s: s.str.lower()).reset_index(drop=True)
