namespace Loop.Runtime;

/// <summary>Who this node is: its name, this life of it (its incarnation), the Loop instance (store)
/// it serves once the store is open, and the labels every agent container it starts carries (how
/// orphans are found after a crash).</summary>
public sealed class NodeIdentity
{
    private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);

    /// <param name="generation">Orleans' generation of this node's silo: it differs at each start, so
    /// the runs of a node that died are told from those of the same node restarted.</param>
    public NodeIdentity(string nodeName, int generation = 0)
    {
        NodeName = nodeName;
        Incarnation = IncarnationOf(nodeName, generation);
        _labels["loop.managed"] = "true";
        _labels["loop.node"] = nodeName;
    }

    public string NodeName { get; }

    /// <summary>"name@generation": what the runs this node takes are marked with in a cluster.</summary>
    public string Incarnation { get; }

    public static string IncarnationOf(string nodeName, int generation) => $"{nodeName}@{generation.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>The node name of an incarnation.</summary>
    public static string NameOf(string incarnation) => incarnation[..incarnation.LastIndexOf('@')];

    /// <summary>Whether <paramref name="incarnation"/> is this node in an earlier life (node names are
    /// unique among the running nodes, so that life has ended).</summary>
    public bool IsEarlierLifeOf(string incarnation) =>
        incarnation != Incarnation && incarnation.Contains('@', StringComparison.Ordinal) && NameOf(incarnation) == NodeName;

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
