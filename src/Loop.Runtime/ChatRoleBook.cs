namespace Loop.Runtime;

using System.Collections.Concurrent;
using Loop.Domain;
using Loop.Domain.Connectors;

/// <summary>
/// The roles of the connectors at work here. Each inbound message and command reads them from the store
/// (so a change made on any node of a cluster counts at once); what was last read is kept for health,
/// which warns about connectors whose every talker may also schedule and cancel.
/// </summary>
public sealed class ChatRoleBook(ILoopStore store)
{
    private readonly ConcurrentDictionary<string, ChatRoles> _known = new(StringComparer.Ordinal);

    public async Task<ChatRoles> GetAsync(string connectorId, CancellationToken cancellationToken)
    {
        var roles = await store.GetChatRolesAsync(connectorId, cancellationToken);
        _known[connectorId] = roles;
        return roles;
    }

    public void Learn(string connectorId, ChatRoles roles) => _known[connectorId] = roles;

    /// <summary>Whether the connector has owners, as last read; null when not read on this node yet.</summary>
    public bool? IsConfigured(string connectorId) => _known.TryGetValue(connectorId, out var roles) ? roles.Configured : null;
}
