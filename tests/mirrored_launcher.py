"""Runs a script (`pretrain` or `finetune`) under MirroredStrategy over 2
logical CPU devices, which the scripts' `--strategy mirrored` cannot make on
a machine without GPUs (it mirrors over the GPUs, else one CPU).

    python mirrored_launcher.py {pretrain,finetune} <the script's arguments>
"""

import importlib.util
import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
name = sys.argv[1]
path = os.path.join(os.path.dirname(__file__), "..", "scripts", f"{name}.py")
spec = importlib.util.spec_from_file_location(f"{name}_script", path)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
parser = script.build_parser()
args = parser.parse_args(sys.argv[2:])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
if name == "pretrain":
    script.fill_defaults(args)
    script.run(args, strategy)
else:
    script.run(args, parser, strategy)
