namespace Loop.Grains;

using Loop.Runtime;
using Orleans.Placement;

/// <summary>Holds one connector's connection on the node it is activated on (see <see cref="IChatConnectionGrain"/>).
/// Placed on the node that asks first: only nodes at work on the connector ask. A node that cannot
/// open it (its adapter is gone, or was never made here) lets the grain go, to be placed again on the
/// next node that asks.</summary>
[PreferLocalPlacement]
public sealed class ChatConnectionGrain(ChatConnections connections, NodeIdentity identity) : Grain, IChatConnectionGrain
{
    public async Task<string> Hold()
    {
        if (!await connections.OpenAsync(this.GetPrimaryKeyString(), CancellationToken.None))
        {
            DeactivateOnIdle();
            throw new InvalidOperationException($"{identity.NodeName} cannot open this connection");
        }
        return identity.Incarnation;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        connections.CloseAsync(this.GetPrimaryKeyString(), cancellationToken);
}
