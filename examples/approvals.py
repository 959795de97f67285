"""A payment above a threshold needs the person's approval of that exact call.

Run: python examples/approvals.py
"""

from __future__ import annotations

import time

from capkit import AgentKey, Invocation, Keyring, Proof, Verifier, mint
from capkit.approvals import approve, bind, describe
from capkit.caveats import Approval, Holder, Max, OneOf, Tools


def main() -> None:
    keyring = Keyring.generate()
    agent, person = AgentKey.generate(), AgentKey.generate()  # the person's approver key
    # Payments to the landlord or the plumber; anything above 100 needs the person's approval.
    token = mint(keyring, Holder(agent.public_key), Tools("bank.transfer"), Max("amount", 5000),
                 OneOf("recipient", ["landlord", "plumber"]),
                 Approval(person.public_key, arg="amount", above=100), location="bank")
    verifier = Verifier(keyring, location="bank")

    def pay(amount: int, discharges=()):
        call = Invocation("bank.transfer", {"recipient": "plumber", "amount": amount})
        return verifier.authorize(token, call, Proof.create(agent, token, call), discharges)

    print("pay 80:  ", pay(80).explain())
    asked = pay(1250)
    print("pay 1250:", asked.explain())
    print(describe(asked.approval))  # what the person is shown
    discharge = approve(asked.approval, person, now=time.time())  # the person says yes, to this call only
    approved = bind(token, discharge)
    print("pay 1250 with the approval:", pay(1250, [approved]).explain())
    print("again with the same approval:", pay(1250, [approved]).explain())
    print("pay 1300 with it:", pay(1300, [approved]).explain())


if __name__ == "__main__":
    main()
