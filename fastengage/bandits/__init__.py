"""Next-best-action: bandit policies over Arrow with propensities, online updates, merging, safe
save/load, and off-policy evaluation of a new policy on logged decisions."""
from ._persist import load_policy
from .data import load_open_bandit, load_open_bandit_items
from .evaluate import ESTIMATORS, evaluate
from .kinds import (
    UCB1,
    BetaTS,
    EpsilonGreedy,
    GaussianTS,
    HybridLinUCB,
    LinEpsilonGreedy,
    LinTS,
    LinUCB,
)
from .policies import Policy

__all__ = ["ESTIMATORS", "UCB1", "BetaTS", "EpsilonGreedy", "GaussianTS", "HybridLinUCB",
           "LinEpsilonGreedy", "LinTS", "LinUCB", "Policy", "evaluate", "load_open_bandit",
           "load_open_bandit_items", "load_policy"]
