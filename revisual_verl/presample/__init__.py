"""Pre-rollout skipping of prompts whose groups will be uniform (GRESO-style selective rollouts).

``rule`` holds the arithmetic (pure), ``sampler`` the dataloader sampler that keeps each prompt's streak and
applies the rule before generation, ``adapter`` what the ``pad_sync`` trainer calls, ``config`` the
``algorithm.presample`` settings.
"""
