"""Next-best-action: bandit policies over Arrow with propensities, online updates, merging, safe
save/load, and off-policy evaluation of a new policy on logged decisions."""
from ._persist import load_policy
from .data import load_open_bandit, load_open_bandit_items
from .evaluate import ESTIMATORS, evaluate
from .policies import (BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, LinUCB,
                       Policy, UCB1)

__all__ = ["Policy", "EpsilonGreedy", "UCB1", "BetaTS", "GaussianTS", "LinUCB", "LinTS",
           "LinEpsilonGreedy", "load_policy", "evaluate", "ESTIMATORS", "load_open_bandit",
           "load_open_bandit_items"]
