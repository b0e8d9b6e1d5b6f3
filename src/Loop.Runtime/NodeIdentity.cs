namespace Loop.Runtime;

/// <summary>Who this node is: its name, the Loop instance (store) it serves once the store is open,
/// and the labels every agent container it starts carries (how orphans are found after a crash).</summary>
public sealed class NodeIdentity
{
    private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);

    public NodeIdentity(string nodeName)
    {
        NodeName = nodeName;
        _labels["loop.managed"] = "true";
        _labels["loop.node"] = nodeName;
    }

    public string NodeName { get; }

    /// <summary>The store's instance id; empty until <see cref="Serve"/>.</summary>
    public string InstanceId { get; private set; } = "";

    public IReadOnlyDictionary<string, string> ContainerLabels => _labels;

    /// <summary>Called once, before any channel wakes, so every container carries the instance it belongs to.</summary>
    public void Serve(string instanceId)
    {
        InstanceId = instanceId;
        _labels["loop.instance"] = instanceId;
    }
}
