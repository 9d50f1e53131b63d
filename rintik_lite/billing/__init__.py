"""Billing domain: calendar-month periods and the rating of ledger intervals.

Pure code only: no database, broker, web or clock. Every function that needs the
current time takes ``now`` as an argument, and every amount of money is a
``decimal.Decimal`` rounded explicitly (see :mod:`rintik_lite.billing.rating`).
"""
