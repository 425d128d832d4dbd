"""The SIP churn bench's parts: the sipp caller (`caller`) and the report (`report`);
`bench.sip_churn` runs them against a node process."""
