"""Runs scripts/pretrain.py under MirroredStrategy over 2 logical CPU
devices, which the script's `--strategy mirrored` cannot make on a machine
without GPUs (it mirrors over the GPUs, else one CPU).

    python pretrain_launcher.py <scripts/pretrain.py arguments>
"""

import importlib.util
import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
path = os.path.join(os.path.dirname(__file__), "..", "scripts", "pretrain.py")
spec = importlib.util.spec_from_file_location("pretrain_script", path)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
args = script.build_parser().parse_args(sys.argv[1:])
script.fill_defaults(args)
script.run(args, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
