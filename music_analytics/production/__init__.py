"""The production topology on one machine: PostgreSQL, the code server, the daemon, the
webserver and `serve` as separate processes (`music-analytics prod up|down|status`)."""
