"""Next best action on the bundled UCI Online Retail customers.

    python examples/next_best_action.py

1. RFM features per customer (fastengage.features.rfm) become the context of each decision.
2. Five offers are the arms; a loyalty offer is only allowed for repeat customers (eligibility).
3. A uniform random campaign is logged with its propensities; the customers' responses come from
   a hidden, seeded response model (a simulation: the real data has no offer responses).
4. Before deploying a learned policy, off-policy evaluation estimates what it would earn from the
   random campaign's logs alone; the simulator tells us the true value to compare with.
5. The policy is deployed and keeps learning online, one batch at a time.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fastengage.bandits import LinEpsilonGreedy, LinUCB, evaluate
from fastengage.datasets import load_online_retail
from fastengage.features import rfm

OFFERS = ["discount_10", "free_shipping", "new_arrivals", "loyalty_points", "no_offer"]
FEATURES = ["recency", "frequency", "monetary", "tenure", "bias"]

# -- 1. context: RFM per customer as of 2011-09-01, log-scaled and standardised -------------
retail = load_online_retail()
customers = rfm(retail, customer="CustomerID", time="InvoiceDate", amount="amount",
                order="InvoiceNo", drop_null_customers=True, as_of="2011-09-01")
raw = np.column_stack([
    np.log1p(customers["recency_days"].to_numpy().astype(float)),
    np.log1p(customers["frequency"].to_numpy().astype(float)),
    np.log1p(np.maximum(customers["monetary_total"].to_numpy(), 0.0)),
    np.log1p(customers["tenure_days"].to_numpy().astype(float)),
])
context = (raw - raw.mean(axis=0)) / raw.std(axis=0)
context = np.column_stack([context, np.ones(len(context))])
n = len(context)
repeat = customers["frequency"].to_numpy() >= 2
allowed = pa.array([OFFERS if r else [o for o in OFFERS if o != "loyalty_points"]
                    for r in repeat], pa.list_(pa.string()))
print(f"{n:,} customers; {repeat.mean():.0%} may receive the loyalty offer")

# -- the hidden response model (what a real campaign would reveal) -------------------------
rng = np.random.default_rng(7)
true_coef = np.array([  # response logit per offer: recency, frequency, monetary, tenure, bias
    [0.9, -0.3, -0.2, 0.0, -2.4],   # discounts win back lapsing customers
    [0.0, 0.2, -0.6, 0.0, -2.6],    # free shipping helps small baskets
    [-0.5, 0.5, 0.3, -0.4, -2.5],   # new arrivals for recent, engaged customers
    [-0.3, 0.9, 0.4, 0.3, -2.3],    # loyalty points for frequent buyers
    [-0.4, 0.3, 0.2, 0.0, -3.2],    # no offer: organic purchase rate
])


def response_rate(X):
    return 1.0 / (1.0 + np.exp(-(X @ true_coef.T)))


def respond(X, offer_codes):
    p = response_rate(X)[np.arange(len(X)), offer_codes]
    return (rng.random(len(X)) < p).astype(float)


def table_of(X, **columns):
    return pa.table({"customer": customers["CustomerID"], **{f: X[:, j] for j, f in
                                                             enumerate(FEATURES)},
                     "allowed": allowed, **columns})


codes_of = {o: k for k, o in enumerate(OFFERS)}
mask = np.ones((n, len(OFFERS)), bool)
mask[~repeat, codes_of["loyalty_points"]] = False
true_rates = response_rate(context)


def true_value(dist):  # expected response of a policy with action distribution dist
    return float((dist * true_rates).sum(axis=1).mean())


# -- 3. a uniform random campaign, logged with propensities ---------------------------------
uniform = np.where(mask, 1.0 / mask.sum(axis=1, keepdims=True), 0.0)
chosen = np.array([rng.choice(len(OFFERS), p=p) for p in uniform])
logs = table_of(context, offer=pa.array(np.asarray(OFFERS)[chosen]),
                propensity=uniform[np.arange(n), chosen], response=respond(context, chosen))
print(f"random campaign: response rate {pc.mean(logs['response']).as_py():.4f}")

# -- 4. learn a policy from the logs and evaluate it off-policy before deploying it ---------
candidate = LinEpsilonGreedy(OFFERS, features=FEATURES, epsilon=0.1)
candidate.update(logs, arm="offer", reward="response")
report = evaluate(logs, action="offer", reward="response", propensity="propensity",
                  target=candidate, features=FEATURES, eligible="allowed", n_bootstrap=500,
                  seed=1)
print("\noff-policy estimates of the candidate (epsilon-greedy over per-offer ridge models):")
print(report.select(["estimator", "value", "ci_lower", "ci_upper", "ess"]).to_pandas()
      .round(4).to_string(index=False))
target_dist = candidate.action_distribution(logs, eligible="allowed")
print(f"true value of the candidate (simulator): {true_value(target_dist):.4f}; "
      f"random: {true_value(uniform):.4f}; best possible: "
      f"{np.where(mask, true_rates, -1).max(axis=1).mean():.4f}")

# -- 5. deploy LinUCB, warm-started from the logs, learning online in weekly batches --------
policy = LinUCB(OFFERS, features=FEATURES, alpha=0.5).update(logs, arm="offer", reward="response")
for week in range(4):
    decisions = policy.decide(table_of(context), id="customer", eligible="allowed", seed=week)
    offer_codes = pc.index_in(decisions["arm"], value_set=pa.array(OFFERS)).to_numpy()
    responses = respond(context, offer_codes)
    policy.update(table_of(context, offer=decisions["arm"], response=responses), arm="offer",
                  reward="response")
    print(f"week {week + 1}: response rate {responses.mean():.4f} "
          f"(expected {true_rates[np.arange(n), offer_codes].mean():.4f}); offers "
          + ", ".join(f"{o}={c}" for o, c in zip(*np.unique(decisions['arm'].to_numpy(
              zero_copy_only=False), return_counts=True))))

# A service decides one customer at a time, from many threads, with the same policy:
arm, propensity = policy.decide_one(context[0], eligible=mask[0])
print(f"\ncustomer {customers['CustomerID'][0].as_py()}: offer {arm!r} (propensity {propensity})")
