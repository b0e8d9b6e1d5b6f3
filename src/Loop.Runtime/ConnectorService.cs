namespace Loop.Runtime;

using Loop.Domain;
using Loop.Domain.Connectors;

/// <summary>A connector as a person adds or edits it. <paramref name="Settings"/> holds every
/// setting given by name (credentials among them; null clears one); <paramref name="Lists"/> the
/// list values given (the sender whitelist, under its kind's name: allowed_users, ...).</summary>
public sealed record ConnectorRequest(
    string? Kind,
    string? Name,
    bool? Enabled,
    IReadOnlyDictionary<string, string?> Settings,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Lists);

/// <summary>
/// Adds, edits and removes connectors (seed 002's channels: a Telegram bot, a mailbox, ...). Each is
/// checked by its kind's <see cref="ConnectorSpec"/>, its credentials sealed before they are stored and
/// never handed back. The nodes pick the change up within a second (<see cref="ChatConnections"/>).
/// Connectors of config.json are read-only here: the file is where they change.
/// </summary>
public sealed class ConnectorService(ILoopStore store, Lazy<SecretBox> secrets, ILoopEvents events, TimeProvider time, ChatRoleBook roleBook)
{
    private const int MaxName = 100;

    public async Task<IReadOnlyList<Connector>> ListAsync(Caller caller, CancellationToken cancellationToken)
    {
        caller.EnsureUser("list connectors");
        return await store.ListConnectorsAsync(cancellationToken);
    }

    public async Task<Connector> GetAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        caller.EnsureUser("read connectors");
        return await store.GetConnectorAsync(id, cancellationToken) ?? throw new LoopNotFoundException($"connector {id} does not exist");
    }

    public const int MaxRoleEntries = 500;

    /// <summary>Who may do what through a connector (its roles apply to config.json's connectors too).</summary>
    public async Task<ChatRoles> GetRolesAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        await GetAsync(caller, id, cancellationToken);
        return await store.GetChatRolesAsync(id, cancellationToken);
    }

    public async Task<ChatRoles> SetRolesAsync(Caller caller, string id, IReadOnlyList<string>? owners, IReadOnlyList<string>? members, CancellationToken cancellationToken)
    {
        var connector = await GetAsync(caller, id, cancellationToken);
        var roles = new ChatRoles(RoleEntries("owners", owners), RoleEntries("members", members));
        if (!roles.Configured && roles.Members.Count > 0)
        {
            throw new LoopValidationException("owners", "owners is empty: name at least one owner (members alone would leave nobody who may schedule or change budgets)");
        }
        await store.SetChatRolesAsync(id, roles, cancellationToken);
        roleBook.Learn(id, roles);
        events.Publish(new LoopEvent("connector.updated", time.GetUtcNow(), null, null,
            roles.Configured ? $"connector \"{connector.Name}\": {roles.Owners.Count} owner(s), {roles.Members.Count} member(s)" : $"connector \"{connector.Name}\": roles removed"));
        return roles;
    }

    private static List<string> RoleEntries(string field, IReadOnlyList<string>? entries)
    {
        var list = (entries ?? []).Select(e => e?.Trim() ?? "").ToList();
        if (list.Count > MaxRoleEntries || list.Any(e => e.Length is 0 or > 320))
        {
            throw new LoopValidationException(field, $"{field} must be a list of at most {MaxRoleEntries} ids or addresses, none empty or longer than 320 characters");
        }
        if (field == "owners" && list.Contains("*"))
        {
            throw new LoopValidationException(field, "owners cannot be \"*\": name the people who may schedule, cancel and change budgets");
        }
        return list.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
    }

    public async Task<Connector> CreateAsync(Caller caller, ConnectorRequest request, CancellationToken cancellationToken)
    {
        caller.EnsureUser("add connectors");
        var kind = Checked(() => ConnectorSpec.ParseKind(request.Kind ?? throw new ConnectorSettingException("kind",
            $"kind is required: one of {string.Join(", ", ConnectorSpec.All.Select(s => ConnectorSpec.Wire(s.Kind)))}")));
        var name = await CheckNameAsync(request.Name, null, cancellationToken)
            ?? throw new LoopValidationException("name", "name is required: what to call the connector, like \"support bot\"");
        var values = CheckValues(kind, request, null);
        var id = Ids.New("cn", time);
        await store.InsertConnectorAsync(Row(id, kind, name, request.Enabled ?? true, values), cancellationToken);
        events.Publish(new LoopEvent("connector.added", time.GetUtcNow(), null, null, $"{ConnectorSpec.Wire(kind)} connector \"{name}\" added"));
        return (await store.GetConnectorAsync(id, cancellationToken))!;
    }

    /// <summary>Changes what the request names and keeps the rest, credentials included.</summary>
    public async Task<Connector> UpdateAsync(Caller caller, string id, ConnectorRequest request, CancellationToken cancellationToken)
    {
        var current = await GetAsync(caller, id, cancellationToken);
        if (current.Source == ConnectorSource.Config)
        {
            throw new LoopConflictException($"connector {id} comes from config.json: change its {ConnectorSpec.Wire(current.Kind)}_* keys there and restart");
        }
        if (request.Kind is { } kind && Checked(() => ConnectorSpec.ParseKind(kind)) != current.Kind)
        {
            throw new LoopValidationException("kind", $"a connector's kind cannot change (this one is {ConnectorSpec.Wire(current.Kind)}): add a new connector instead");
        }
        var name = await CheckNameAsync(request.Name, id, cancellationToken) ?? current.Name;
        var values = CheckValues(current.Kind, request, new ConnectorValues(current.Settings, await OpenSecretsAsync(id, cancellationToken), current.Allowed));
        if (!await store.UpdateConnectorAsync(Row(id, current.Kind, name, request.Enabled ?? current.Enabled, values), cancellationToken))
        {
            throw new LoopNotFoundException($"connector {id} does not exist");
        }
        events.Publish(new LoopEvent("connector.updated", time.GetUtcNow(), null, null, $"{ConnectorSpec.Wire(current.Kind)} connector \"{name}\" changed"));
        return (await store.GetConnectorAsync(id, cancellationToken))!;
    }

    /// <summary>Removes the connector; the channels it opened stay, with their conversations.</summary>
    public async Task DeleteAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        var current = await GetAsync(caller, id, cancellationToken);
        if (current.Source == ConnectorSource.Config)
        {
            throw new LoopConflictException($"connector {id} comes from config.json: remove its {ConnectorSpec.Wire(current.Kind)}_* keys there and restart");
        }
        if (await store.DeleteConnectorAsync(id, cancellationToken))
        {
            events.Publish(new LoopEvent("connector.removed", time.GetUtcNow(), null, null, $"{ConnectorSpec.Wire(current.Kind)} connector \"{current.Name}\" removed"));
        }
    }

    private ConnectorValues CheckValues(ConnectorKind kind, ConnectorRequest request, ConnectorValues? current)
    {
        var spec = ConnectorSpec.For(kind);
        foreach (var list in request.Lists.Keys.Where(k => k != spec.AllowedKey))
        {
            throw new LoopValidationException(list, spec.AllowedKey is null
                ? $"a {ConnectorSpec.Wire(kind)} connector takes no list ('{list}'): anyone in a server the bot is in may talk to it"
                : $"'{list}' is not a list setting of a {ConnectorSpec.Wire(kind)} connector: its whitelist is {spec.AllowedKey}, e.g. \"{spec.AllowedKey}\": {spec.AllowedExample}");
        }
        return Checked(() => spec.Check(request.Settings, spec.AllowedKey is { } key ? request.Lists.GetValueOrDefault(key) : null, current));
    }

    /// <summary>The current credentials, or none when this node cannot open them (another key): an
    /// edit must then give them again, and the check says which are required.</summary>
    private async Task<IReadOnlyDictionary<string, string>> OpenSecretsAsync(string id, CancellationToken cancellationToken)
    {
        if (await store.GetConnectorSecretsAsync(id, cancellationToken) is not { } sealedSecrets)
        {
            return new Dictionary<string, string>();
        }
        try
        {
            return secrets.Value.Open(sealedSecrets);
        }
        catch (InvalidOperationException)
        {
            return new Dictionary<string, string>();
        }
    }

    private async Task<string?> CheckNameAsync(string? name, string? id, CancellationToken cancellationToken)
    {
        if (name is null)
        {
            return null;
        }
        var trimmed = name.Trim();
        if (trimmed.Length is 0 or > MaxName)
        {
            throw new LoopValidationException("name", $"name must be 1 to {MaxName} characters");
        }
        if ((await store.ListConnectorsAsync(cancellationToken)).FirstOrDefault(c => c.Id != id && string.Equals(c.Name, trimmed, StringComparison.OrdinalIgnoreCase)) is { } other)
        {
            throw new LoopConflictException($"connector {other.Id} is called \"{other.Name}\" already: choose another name");
        }
        return trimmed;
    }

    private NewConnector Row(string id, ConnectorKind kind, string name, bool enabled, ConnectorValues values) =>
        new(id, kind, name, enabled, values.Settings, values.Allowed, values.Secrets.Keys.ToList(), secrets.Value.Seal(values.Secrets), ConnectorSource.Api);

    private static T Checked<T>(Func<T> check)
    {
        try
        {
            return check();
        }
        catch (ConnectorSettingException problem)
        {
            throw new LoopValidationException(problem.Setting, problem.Message);
        }
    }
}
