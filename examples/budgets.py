"""Budgets, call limits and revocation: state shared by every verifier that uses the same store.

Run: python examples/budgets.py  (README.md shows the same code).
"""

import tempfile

from capkit import AgentKey, AuthorizationDenied, Invocation, Keyring, Proof, Verifier, mint, open_store
from capkit.caveats import Budget, CallLimit, Holder, Tools

keyring, agent = Keyring.generate(), AgentKey.generate()
store = open_store(f"sqlite://{tempfile.mkdtemp()}/state.db")  # or postgresql://..., redis://...
verifier = Verifier(keyring, location="bank", store=store)
token = mint(keyring, Holder(agent.public_key), Tools("bank.transfer"),
             Budget("amount", 500, "month"), CallLimit(20, "1h"), location="bank")

for amount in (300, 150, 100):
    call = Invocation("bank.transfer", {"amount": amount})
    try:
        with verifier.authorized(token, call, Proof.create(agent, token, call)):
            print(f"paid {amount}")        # the tool runs here; returning commits the spend
    except AuthorizationDenied as denied:  # the body never ran
        print(denied.decision.explain())   # denied: amount 100 exceeds the budget: 50 of 500 left ...

verifier.revoke(token.id, reason="task cancelled")
call = Invocation("bank.transfer", {"amount": 1})
print(verifier.authorize(token, call, Proof.create(agent, token, call)).explain())
