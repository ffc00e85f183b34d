# Versioned prices, the spend ledger and rollups arrive with the billing issues; the price of
# a deployment lives on routing.Deployment for now and the cost of each request on its
# audit record.
