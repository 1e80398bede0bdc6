namespace Attention.Reference.IO;

/// <summary>PyTorch <c>torch.save</c> files (placeholder until the restricted unpickler lands).</summary>
public static class Pth
{
    /// <summary>Reads every tensor of a state_dict saved with <c>torch.save</c>.</summary>
    public static List<StoredTensor> Read(string path) =>
        throw new NotSupportedException($"{path}: reading .pth files is not supported yet; convert it to .safetensors.");
}
