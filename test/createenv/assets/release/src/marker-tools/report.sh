#!/bin/bash
# One line the createenv suite parses from the console log.
store=/var/vcap/store/marker
echo "CREATEENV-MARKER id=$(cat $store/id) starts=$(cat $store/starts)" \
  "store=$(findmnt -n -o SOURCE /var/vcap/store || echo none)" \
  "$(cat /var/vcap/packages/marker-tools/compiled)"
