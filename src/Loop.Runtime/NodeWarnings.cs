namespace Loop.Runtime;

/// <summary>What an operator should know about how this node is set up (a root daemon, no isolation,
/// a missing binary): logged at start and listed in /api/health for as long as it runs.</summary>
public sealed class NodeWarnings(IEnumerable<string> fromConfig)
{
    private readonly List<string> _warnings = [.. fromConfig];

    public void Add(string warning)
    {
        lock (_warnings)
        {
            _warnings.Add(warning);
        }
    }

    public IReadOnlyList<string> All
    {
        get
        {
            lock (_warnings)
            {
                return [.. _warnings];
            }
        }
    }
}
