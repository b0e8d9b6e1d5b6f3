namespace Loop.Grains;

/// <summary>
/// The holder of one chat account's connection (key: the adapter's <c>Connection</c>, e.g. "discord"):
/// a platform that delivers each message once per connection (Discord's gateway, a Telegram long poll)
/// must have exactly one node of a cluster listening. The node where this grain lives opens the
/// connection and closes it when the grain goes; Orleans places the grain again on a node left when
/// that node dies, and every node that can hold the connection keeps asking for it, so a new holder
/// takes over within a membership timeout.
/// </summary>
[Alias("Loop.IChatConnectionGrain")]
public interface IChatConnectionGrain : IGrainWithStringKey
{
    /// <summary>Keeps the connection held, opening it on this grain's node if it is not; answers the
    /// incarnation ("name@generation") of the node that holds it.</summary>
    [Alias("Hold")]
    Task<string> Hold();
}
