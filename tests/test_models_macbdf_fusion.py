"""MACB-DF fusion: Eq. 10 weights, Eq. 17 fusion, Eq. 18 guidance and RFMF, against direct computations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avforensics.models.macbdf.cluster_weights import ClusterFusionWeights
from avforensics.models.macbdf.fusion import (
    GuidedFusionLayer,
    RepresentationFusion,
    audio_sequence,
    fuse,
    video_sequence,
)

SCALES = [(5, 2), (3, 1)]


def test_sequences_and_eq17() -> None:
    video = torch.randn(2, 4, 3, 2, 2)  # (B, C, T, h, w)
    audio = torch.randn(2, 4, 5, 6)  # (B, C, F', T')
    torch.testing.assert_close(video_sequence(video)[:, 1, 2], video[:, 2, 1].mean(dim=(1, 2)))
    # T' = 6 frames averaged onto T = 3: pairs of mel-patch columns.
    torch.testing.assert_close(audio_sequence(audio, 3)[:, 2, 1], audio[:, 1, :, 4:6].mean(dim=(1, 2)))
    w_video, w_audio = torch.tensor([0.25, 1.0]), torch.tensor([0.75, 0.0])
    v_seq, a_seq = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    fused = fuse(w_video, w_audio, v_seq, a_seq)
    torch.testing.assert_close(fused[0], 0.25 * v_seq[0] + 0.75 * a_seq[0])
    torch.testing.assert_close(fused[1], v_seq[1])


def test_eq18_guidance_is_the_block_output_times_one_plus_the_projected_fusion() -> None:
    torch.manual_seed(0)
    layer = GuidedFusionLayer(4, SCALES, SCALES).eval()
    video, audio = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 4, 5, 6)
    w_video, w_audio = torch.tensor([0.5, 0.3]), torch.tensor([0.5, 0.7])
    with torch.no_grad():
        new_video, new_audio = layer(video, audio, w_video, w_audio)
        # Zero-initialised guidance: the level starts as its two LKA blocks alone.
        torch.testing.assert_close(new_video, layer.video_block(video))
        torch.testing.assert_close(new_audio, layer.audio_block(audio))
        layer.video_guide.weight.normal_()
        layer.audio_guide.bias.fill_(0.5)
        new_video, new_audio = layer(video, audio, w_video, w_audio)
        fused = fuse(w_video, w_audio, video_sequence(video), audio_sequence(audio, 3))  # (B, T, C)
        gain = layer.video_guide(fused)  # (B, T, C)
        expected = layer.video_block(video) * (1 + gain.permute(0, 2, 1)[..., None, None])
        torch.testing.assert_close(new_video, expected)
        torch.testing.assert_close(new_audio, layer.audio_block(audio) * 1.5)


def test_rfmf_ignores_audio_tokens_of_clips_without_audio() -> None:
    torch.manual_seed(0)
    rfmf = RepresentationFusion(8, levels=2, heads=2, layers=1, dropout=0.0).eval()
    audio_tokens, video_tokens = [torch.randn(2, 8) for _ in range(2)], [torch.randn(2, 8) for _ in range(2)]
    present = torch.tensor([True, False])
    with torch.no_grad():
        out = rfmf(audio_tokens, video_tokens, present)
        other = rfmf([torch.randn(2, 8) for _ in audio_tokens], video_tokens, present)
    torch.testing.assert_close(other[1], out[1])
    assert (other[0] - out[0]).abs().max() > 1e-3


def test_eq10_importance_and_normalisation() -> None:
    torch.manual_seed(0)
    weights = ClusterFusionWeights(
        4, 8, heads=2, max_clusters=3, new_cluster_distance=0.5, beta=0.5, eps=0.05
    )
    z_video, z_audio = F.normalize(torch.randn(3, 4), dim=-1), F.normalize(torch.randn(3, 4), dim=-1)
    for _ in range(2):
        weights.update(z_video, z_audio, torch.ones(3, dtype=torch.bool))
    v_seq, a_seq = torch.randn(3, 5, 8), torch.randn(3, 5, 8)
    present = torch.tensor([True, True, False])
    with torch.no_grad():
        w_video, w_audio = weights(z_video, z_audio, v_seq, a_seq, present)
        context = torch.cat([v_seq, a_seq], dim=1)
        padding = torch.cat([torch.zeros(3, 5, dtype=torch.bool), ~present[:, None].expand(-1, 5)], dim=1)
        gamma = torch.sigmoid(weights.gamma_logit)

        def importance(modality: str, own: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            attended = weights.attention[modality](
                own.mean(1, keepdim=True), context, context, key_padding_mask=padding
            )[0][:, 0]
            distance = weights.clusters[modality].distance(z, 0.5)
            return gamma * F.relu(weights.score[modality](attended)[:, 0]) + (1 - gamma) / (distance + 0.05)

        raw_video = importance("video", v_seq, z_video)
        raw_audio = importance("audio", a_seq, z_audio) * present
    torch.testing.assert_close(w_video, raw_video / (raw_video + raw_audio))
    torch.testing.assert_close(w_audio, raw_audio / (raw_video + raw_audio))
    assert w_audio[2].item() == 0.0 and w_video[2].item() == 1.0
