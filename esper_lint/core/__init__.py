"""Core values every layer shares and none computes: findings and the fixes they carry, spans, the API
table, `# noqa`, decoding, atomic writes, interrupt handling. Imports nothing else of esper-lint."""
