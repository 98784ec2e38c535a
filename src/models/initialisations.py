"""The file each network's official recipe initialises its backbone from, by name of the weights
registry (`src/hub/known_weights.yaml`): what ``model.pretrained=imagenet`` stands for. A network
without an entry here has no known initialisation (``imagenet`` is then refused with a message)."""

from __future__ import annotations

#: torchvision ImageNet ResNets (SimpleBaseline, PoseNet, RootNet, SimCC-R50).
RESNET = {50: "resnet50_imagenet", 101: "resnet101_imagenet", 152: "resnet152_imagenet"}
#: HRNet ImageNet classification weights of the HRNet model zoo (HRNet, HigherHRNet).
HRNET = {32: "hrnet_w32_imagenet", 48: "hrnet_w48_imagenet"}
#: RTMPose starts from CSPNeXt pretrained with UDP heatmaps on AIC + COCO; by widen factor.
CSPNEXT_POSE = {0.375: "cspnext_t_udp_aic_coco", 0.5: "cspnext_s_udp_aic_coco", 0.75: "cspnext_m_udp_aic_coco",
                1.0: "cspnext_l_udp_aic_coco"}  # fmt: skip
#: The CSPNeXt heatmap model (RTMPose's pretraining stage) starts from ImageNet CSPNeXt.
CSPNEXT_IMAGENET = {0.375: "cspnext_t_imagenet", 0.5: "cspnext_s_imagenet", 0.75: "cspnext_m_imagenet",
                    1.0: "cspnext_l_imagenet"}  # fmt: skip
#: ViTPose starts from MAE weights, by embedding width. mmpose publishes these files with a date but
#: no hash in the name, so they are URLs (downloaded once, checked for completeness only), not
#: registry entries (confirmed in open-mmlab/mmpose@557155c3 configs/body_2d_keypoint/topdown_heatmap/
#: coco/td-hm_ViTPose-{small,base,large}_8xb64-210e_coco-256x192.py and @8fcaca5b for huge).
MAE_VIT = {
    width: f"https://download.openmmlab.com/mmpose/v1/pretrained_models/mae_pretrain_vit_{name}_20230913.pth"
    for width, name in ((384, "small"), (768, "base"), (1024, "large"), (1280, "huge"))
}
