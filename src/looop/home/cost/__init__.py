"""Spend readers a light verb needs: prices, the ledger, the breakers, the decide cap, money."""
