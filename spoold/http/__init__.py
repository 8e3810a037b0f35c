"""Pure HTTP pieces with no Twisted: form parsing, content negotiation, caching rules."""
