#!/usr/bin/env bashio
# What a real add-on does at start: read its options and its own info, and (as the mosquitto
# add-on does) register the MQTT service, then read it back. Each answer goes to /data, and a
# failure is written too, so the test sees which call failed.
set +e
out=/data/bashio-probe.json
greeting=$(bashio::config 'greeting'); config_rc=$?
name=$(bashio::addon.name); info_rc=$?
version=$(bashio::addon.version)
ip=$(bashio::addon.ip_address)
if bashio::var.true "$(bashio::config 'provide')"; then
    bashio::api.supervisor POST /services/mqtt '{"host":"core-mosquitto","port":1883,"username":"u","password":"p"}' >/dev/null
fi
mqtt_host=$(bashio::services mqtt 'host'); services_rc=$?
jq -n --arg greeting "$greeting" --arg name "$name" --arg ip "$ip" --arg version "$version" \
    --arg mqtt_host "$mqtt_host" --argjson config_rc "$config_rc" --argjson info_rc "$info_rc" \
    --argjson services_rc "$services_rc" \
    '{greeting: $greeting, name: $name, ip: $ip, version: $version, mqtt_host: $mqtt_host,
      config_rc: $config_rc, info_rc: $info_rc, services_rc: $services_rc}' > "$out.tmp"
mv "$out.tmp" "$out"
