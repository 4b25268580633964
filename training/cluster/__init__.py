"""Training on several workers: who they are, how they find each other, the strategy they share, and a
launcher of local workers for a try-out.

    tf_config    the cluster a ``TF_CONFIG`` describes (:class:`ClusterSpec`), checked (no TensorFlow)
    ports        free loopback ports for local workers
    rendezvous   every worker reaches every other before TensorFlow is asked to (clear errors, bounded time)
    strategy     MultiWorkerMirroredStrategy with the coordination service's timeouts set
    launcher     ``melsynth train --workers N``: N local workers on 127.0.0.1, all stopped if one fails

TensorFlow is imported only by :mod:`training.cluster.strategy`, inside its function.
"""
