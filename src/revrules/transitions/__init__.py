"""Subscription transitions, one module per event family.

Each ``on_<event type>`` function takes the transaction (:class:`revrules.transaction.Tx`)
and records what the event does: the new subscription in the draft state, decisions and
revenue events; :data:`revrules.engine._HANDLERS` maps every event type to its function.
The modules import each other only downwards: ``pauses`` and ``refunds`` need no other
family, ``payments`` ends dunning with ``pauses``, ``checkout`` and ``plan_changes`` open
charges with ``payments``, ``renewals`` uses these three, and ``store`` maps store
notifications onto all of them. None of them imports :mod:`revrules.engine`.
"""
