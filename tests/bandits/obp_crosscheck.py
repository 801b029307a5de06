"""Cross-check against Open Bandit Pipeline 0.5.7's own code (not collected by pytest).

obp 0.5.7 cannot be installed next to numpy 2 / Python 3.11 (it pins torch 1.12, scikit-learn
1.1.3, scipy 1.9.3), so the tests compare with its formulas transcribed in tests/naive_bandits.py.
This script checks that transcription against obp's real source once:

    pip download obp==0.5.7 --no-deps --no-binary=:all: --ignore-requires-python -d /tmp/obp
    tar xzf /tmp/obp/obp-0.5.7.tar.gz -C /tmp/obp
    OBP_SRC=/tmp/obp/obp-0.5.7 python tests/bandits/obp_crosscheck.py

``import torch`` in obp/utils.py is answered with a stub: the estimators and RegressionModel
never call torch. Prints the largest difference on generated logs and, per estimator, on the
bundled Open Bandit sample with obp's own RegressionModel as the reward model.
"""
import importlib.abc
import importlib.machinery
import os
import sys
import types


class _Any:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _Any()
    def __getattr__(self, name): return _Any()
    def __getitem__(self, k): return _Any()
    def __or__(self, o): return _Any()
    def __ror__(self, o): return _Any()
    def __mro_entries__(self, bases): return (object,)
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        m = types.ModuleType(spec.name); m.__path__ = []
        m.__getattr__ = lambda attr: _Any()
        return m
    def exec_module(self, module): pass
sys.meta_path.insert(0, _Finder())
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.environ.get("OBP_SRC", "/tmp/obp/obp-0.5.7"), os.path.dirname(HERE), HERE]
from obp.ope import DirectMethod as DM
from obp.ope import DoublyRobust as DR
from obp.ope import DoublyRobustWithShrinkage as DRos
from obp.ope import InverseProbabilityWeighting as IPW
from obp.ope import RegressionModel
from obp.ope import SelfNormalizedDoublyRobust as SNDR
from obp.ope import SelfNormalizedInverseProbabilityWeighting as SNIPW
from obp.ope import SwitchDoublyRobust as SwitchDR
from sklearn.linear_model import LogisticRegression
from test_ope import _generated, open_bandit

from fastengage.bandits import evaluate


def obp_values(reward, action, pscore, pi_e, q_hat, position, tau=100.0, lam=100.0):
    kw = dict(reward=reward, action=action, pscore=pscore, action_dist=pi_e, position=position)
    out = {"ipw": IPW().estimate_policy_value(**kw), "snipw": SNIPW().estimate_policy_value(**kw)}
    kw["estimated_rewards_by_reg_model"] = q_hat
    out["dm"] = DM().estimate_policy_value(position=position, action_dist=pi_e,
                                           estimated_rewards_by_reg_model=q_hat)
    out["dr"] = DR().estimate_policy_value(**kw)
    out["sndr"] = SNDR().estimate_policy_value(**kw)
    out["switch-dr"] = SwitchDR(lambda_=tau).estimate_policy_value(**kw)
    out["dr-os"] = DRos(lambda_=lam).estimate_policy_value(**kw)
    return out

worst = 0.0
# generated logs
for seed in range(5):
    logs, a, r, p, pos, pi_e, q_hat = _generated(3000, 6, 3, seed)
    ours = evaluate(logs, action="a", reward="r", propensity="p", position="pos", target=pi_e,
                    reward_model=q_hat, n_bootstrap=0)
    mine = dict(zip(ours["estimator"].to_pylist(), ours["value"].to_pylist()))
    theirs = obp_values(r, a, p, pi_e, q_hat, pos)
    worst = max(worst, max(abs(mine[k] - theirs[k]) for k in theirs))
print("generated logs: max |fastengage - obp| =", worst)
# Open Bandit sample: obp's RegressionModel vs fastengage's reward model, then the estimators
logs, names, context, action_context, pi_e, on_policy, df = open_bandit.__wrapped__()
action = df["item_id"].to_numpy(); position = df["position"].to_numpy() - 1
reward = df["click"].to_numpy(); pscore = df["propensity_score"].to_numpy()
rm = RegressionModel(n_actions=80, len_list=3, action_context=action_context,
                     base_model=LogisticRegression(max_iter=1000, random_state=12345))
q_obp = rm.fit_predict(context=context, action=action, reward=reward, position=position,
                       pscore=pscore, n_folds=3, random_state=12345)
ours = evaluate(logs, action="item", reward="click", propensity="pscore", position="position",
                target=pi_e, features=names, arms=list(range(80)), action_context=action_context,
                n_folds=3, seed=12345, n_bootstrap=0)
mine = dict(zip(ours["estimator"].to_pylist(), ours["value"].to_pylist()))
theirs = obp_values(reward, action, pscore, pi_e, q_obp, position)
for k in theirs:
    diff = abs(mine[k] - theirs[k])
    print(f"{k:10s} fastengage {mine[k]:.10f} obp {theirs[k]:.10f} diff {diff:.2e}")
