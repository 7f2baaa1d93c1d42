#!/bin/sh
echo ready >&3
exec sleep 1000
