"""Next-best-action: bandit policies over Arrow with propensities, online updates, merging, safe
save/load, and off-policy evaluation of a new policy on logged decisions."""
from .policies import (BetaTS, EpsilonGreedy, GaussianTS, LinEpsilonGreedy, LinTS, LinUCB,
                       Policy, UCB1)

__all__ = ["Policy", "EpsilonGreedy", "UCB1", "BetaTS", "GaussianTS", "LinUCB", "LinTS",
           "LinEpsilonGreedy"]
