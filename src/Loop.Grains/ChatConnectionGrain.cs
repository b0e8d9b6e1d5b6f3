namespace Loop.Grains;

using Loop.Runtime;
using Orleans.Placement;

/// <summary>Holds one chat connection on the node it is activated on (see <see cref="IChatConnectionGrain"/>).
/// Placed on the node that asks first: only nodes configured for the connection ask, so it never lands
/// on one that cannot open it.</summary>
[PreferLocalPlacement]
public sealed class ChatConnectionGrain(ChatConnections connections, NodeIdentity identity) : Grain, IChatConnectionGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken) =>
        connections.OpenAsync(this.GetPrimaryKeyString(), cancellationToken);

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        connections.CloseAsync(this.GetPrimaryKeyString(), cancellationToken);

    public Task<string> Hold() => Task.FromResult(identity.Incarnation);
}
