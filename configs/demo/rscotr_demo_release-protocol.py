# The demo under the released Potsdam protocol (6 classes: clutter is trained as
# class 5, training crops padded with 5, evaluation over 6 classes ignoring 5;
# the metrics are tagged potsdam.protocol = release-6class) instead of the
# demo's 5-class protocol. Everything else as configs/demo/rscotr_demo.py:
#   DEMO_CONFIG=configs/demo/rscotr_demo_release-protocol.py bash tools/misc/run_demo.sh
_base_ = './rscotr_demo.py'
model = dict(heads=dict(seg=dict(num_classes=6)))
data = dict(
    train=dict(potsdam=dict(dataset=dict(protocol='release',
                                         pipeline={{_base_.potsdam_train_pipeline_128}}))),
    val=dict(potsdam=dict(dataset=dict(protocol='release'))),
    test=dict(potsdam=dict(dataset=dict(protocol='release'))))
