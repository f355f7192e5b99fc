"""Metric losses for the embedding models: triplet (online semi-hard or hard mining),
contrastive over every pair of a batch, and prototypical (a softmax over the batch's class
prototypes).

The embeddings are L2-normalized, so distances are in [0, 2]. Batches hold several examples of
each class (:func:`dataprep.train.embedding.balanced_batches`), so every anchor has positives and
negatives in its own batch: mining happens online, per batch, on the distances the model gives
now. Plain ``keras.ops``: the losses run on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

LOSSES = ("triplet", "contrastive", "prototypical")
MINING = ("semi-hard", "hard")
_FAR = 4.0  # more than any distance between unit vectors
# prototypical: cosine similarities times this (a temperature of 0.2). Measured on the digits
# (docs/training.md): 5 learns features that tell unseen digits apart better than 3, 10 or 20.
PROTO_SCALE = 5.0


def pairwise_distances(embeddings):
    """Euclidean distances ``[B, B]`` between unit vectors (gradient-safe at zero)."""
    from keras import ops

    dot = ops.matmul(embeddings, ops.transpose(embeddings))
    return ops.sqrt(ops.maximum(2.0 - 2.0 * dot, 1e-12))


def _masks(labels):
    from keras import ops

    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    eye = ops.cast(ops.eye(ops.shape(labels)[0]), "bool")
    positive = ops.logical_and(same, ops.logical_not(eye))
    return positive, ops.logical_not(same)


def triplet_loss(labels, embeddings, *, margin: float = 0.2, mining: str = "semi-hard"):
    """Mean triplet loss ``max(0, d(a, p) - d(a, n) + margin)`` of a batch.

    ``hard``: for every anchor its farthest positive and nearest negative (batch-hard). ``semi-
    hard`` (FaceNet): for every anchor-positive pair the nearest negative farther than the
    positive; when there is none, the farthest negative.
    """
    from keras import ops

    embeddings = ops.cast(embeddings, "float32")
    dist = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    pos_f, neg_f = ops.cast(positive, "float32"), ops.cast(negative, "float32")
    if mining == "hard":
        hardest_pos = ops.max(dist * pos_f, axis=1)
        hardest_neg = ops.min(dist + _FAR * (1.0 - neg_f), axis=1)
        has_both = ops.cast(ops.any(positive, axis=1), "float32") * ops.cast(
            ops.any(negative, axis=1), "float32"
        )
        losses = ops.relu(hardest_pos - hardest_neg + margin) * has_both
        return ops.sum(losses) / ops.maximum(ops.sum(has_both), 1.0)
    d_ap = ops.expand_dims(dist, 2)  # [a, p, 1]
    d_an = ops.expand_dims(dist, 1)  # [a, 1, n]
    farther = ops.logical_and(ops.expand_dims(negative, 1), ops.greater(d_an, d_ap))
    semi = ops.min(ops.where(farther, d_an, _FAR), axis=2)  # [a, p]
    farthest_neg = ops.max(dist * neg_f, axis=1, keepdims=True)  # [a, 1]
    chosen = ops.where(ops.any(farther, axis=2), semi, farthest_neg)
    has_neg = ops.cast(ops.any(negative, axis=1, keepdims=True), "float32")
    weight = pos_f * has_neg
    losses = ops.relu(dist - chosen + margin) * weight
    return ops.sum(losses) / ops.maximum(ops.sum(weight), 1.0)


def contrastive_loss(labels, embeddings, *, margin: float = 0.5):
    """Contrastive loss over every pair: ``d^2`` for same-class pairs, ``max(0, margin - d)^2``
    for the others; the two means are averaged (a batch has far more negative pairs)."""
    from keras import ops

    dist = pairwise_distances(ops.cast(embeddings, "float32"))
    positive, negative = _masks(labels)
    pos_f, neg_f = ops.cast(positive, "float32"), ops.cast(negative, "float32")
    pos = ops.sum(pos_f * dist**2) / ops.maximum(ops.sum(pos_f), 1.0)
    neg = ops.sum(neg_f * ops.relu(margin - dist) ** 2) / ops.maximum(ops.sum(neg_f), 1.0)
    return (pos + neg) / 2.0


def prototypical_loss(labels, embeddings, *, scale: float = PROTO_SCALE):
    """Prototypical loss of a batch: each example's cross-entropy of a softmax over the batch's
    class prototypes (the normalized mean embedding of each class in the batch), with logits
    ``scale * cosine``.

    Unlike the triplet and contrastive losses, every example is pulled towards its whole class
    and pushed from every other class at once, through a soft (temperature ``1 / scale``)
    softmax: the loss does not reach zero by putting each class on one point, which is what
    makes triplet embeddings of a few training classes collapse. Labels may be any integers
    (no fixed number of classes): the softmax over classes is computed over the batch's
    examples, each weighted by one over its class count, which equals a softmax over the
    distinct classes exactly.
    """
    from keras import ops

    emb = ops.cast(embeddings, "float32")
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    same = ops.cast(ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0)), "float32")
    counts = ops.sum(same, axis=1)  # examples of each example's class
    protos = ops.matmul(same, emb) / ops.expand_dims(counts, 1)  # [B, D]: its class's mean
    protos = protos / ops.sqrt(ops.maximum(ops.sum(protos * protos, -1, keepdims=True), 1e-12))
    logits = scale * ops.matmul(emb, ops.transpose(protos))  # [B, B]: example x class-of-j
    own = scale * ops.sum(emb * protos, axis=1)
    weighted = logits - ops.expand_dims(ops.log(counts), 0)  # each class once in the sum
    return ops.mean(ops.logsumexp(weighted, axis=1) - own)


def metric_loss(loss: str = "triplet", mining: str = "semi-hard", margin: float = 0.2):
    """The Keras loss function ``fn(labels, embeddings)`` for ``loss`` (``triplet``,
    ``contrastive`` or ``prototypical``; ``mining`` and ``margin`` apply to the first two).

    Raises:
        ValueError: for an unknown loss or mining.
    """
    if loss not in LOSSES or mining not in MINING:
        raise ValueError(f"unknown loss {loss!r} / mining {mining!r}")
    if loss == "contrastive":

        def contrastive(labels, embeddings):
            return contrastive_loss(labels, embeddings, margin=margin)

        return contrastive
    if loss == "prototypical":

        def prototypical(labels, embeddings):
            return prototypical_loss(labels, embeddings)

        return prototypical

    def triplet(labels, embeddings):
        return triplet_loss(labels, embeddings, margin=margin, mining=mining)

    return triplet
