#!/usr/bin/with-contenv bashio
# Runs in s6-overlay's stage 2 before the services, like an add-on's cont-init script.
bashio::log.info "probe cont-init: bashio works"
