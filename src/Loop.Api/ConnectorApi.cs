namespace Loop.Api;

using System.Text.Json;
using System.Text.Json.Nodes;
using Loop.Domain.Connectors;
using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The connector endpoints (seed 002's /api/channels): thin calls into <see cref="ConnectorService"/>.
/// A connector's JSON is flat, as the config file's keys are without their prefix:
/// <c>{"kind": "telegram", "name": "…", "token": "…", "allowed_users": ["…"]}</c>. Credentials are
/// taken in and never given back: a connector lists only which are set (<c>secrets_set</c>).
/// </summary>
public static class ConnectorApi
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var connectors = app.ServiceProvider.GetRequiredService<ConnectorService>();
        var json = ApiJsonContext.Default;

        app.MapGet("/api/connectors", async (HttpContext http, CancellationToken ct) =>
            Results.Json(new JsonArray([.. (await connectors.ListAsync(ApiCallers.Of(http), ct)).Select(ToJson)]), json.JsonArray))
            .WithName("ListConnectors")
            .WithSummary("The connectors: chat platform accounts Loop listens on")
            .Produces<JsonArray>();

        // What each kind takes, for forms: the dashboard builds its per-kind forms from this.
        app.MapGet("/api/connectors/kinds", () => Results.Json(new JsonArray([.. ConnectorSpec.All.Select(KindJson)]), json.JsonArray))
            .WithName("ListConnectorKinds")
            .WithSummary("What each kind of connector takes: its settings, which are secret or required")
            .Produces<JsonArray>();

        app.MapPost("/api/connectors", async (HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.JsonObject, ct);
            var connector = await connectors.CreateAsync(ApiCallers.Of(request.HttpContext), Read(body), ct);
            return Results.Json(ToJson(connector), json.JsonObject, statusCode: StatusCodes.Status201Created);
        })
            .WithName("CreateConnector")
            .WithSummary("Add a connector: {\"kind\", \"name\", its settings and credentials, and its whitelist}, flat as in the config file")
            .JsonBody<JsonObject>()
            .Produces<JsonObject>(StatusCodes.Status201Created);

        app.MapGet("/api/connectors/{id}", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(ToJson(await connectors.GetAsync(ApiCallers.Of(http), id, ct)), json.JsonObject))
            .WithName("GetConnector")
            .WithSummary("One connector: settings, which credentials are set (never their values), status")
            .Produces<JsonObject>();

        app.MapGet("/api/connectors/{id}/roles", async (string id, HttpContext http, CancellationToken ct) =>
            Results.Json(RolesDto.From(await connectors.GetRolesAsync(ApiCallers.Of(http), id, ct)), json.RolesDto))
            .WithName("GetConnectorRoles")
            .WithSummary("Who may do what through the connector: owners (everything) and members (chat, read)")
            .Produces<RolesDto>();

        app.MapPut("/api/connectors/{id}/roles", async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.RolesDto, ct);
            return Results.Json(RolesDto.From(await connectors.SetRolesAsync(ApiCallers.Of(request.HttpContext), id, body.Owners, body.Members, ct)), json.RolesDto);
        })
            .WithName("SetConnectorRoles")
            .WithSummary("Set the connector's owners and members (platform ids, addresses or @domains; both empty: no roles, everyone who may talk may do everything)")
            .JsonBody<RolesDto>()
            .Produces<RolesDto>();

        app.MapMethods("/api/connectors/{id}", ["PATCH"], async (string id, HttpRequest request, CancellationToken ct) =>
        {
            var body = await ApiErrors.ReadBodyAsync(request, json.JsonObject, ct);
            return Results.Json(ToJson(await connectors.UpdateAsync(ApiCallers.Of(request.HttpContext), id, Read(body), ct)), json.JsonObject);
        })
            .WithName("UpdateConnector")
            .WithSummary("Change a connector: only the keys given")
            .JsonBody<JsonObject>()
            .Produces<JsonObject>();

        app.MapDelete("/api/connectors/{id}", async (string id, HttpContext http, CancellationToken ct) =>
        {
            await connectors.DeleteAsync(ApiCallers.Of(http), id, ct);
            return Results.NoContent();
        })
            .WithName("DeleteConnector")
            .WithSummary("Remove a connector")
            .Produces(StatusCodes.Status204NoContent);
    }

    /// <summary>The request's fields: kind, name and enabled by name, strings and numbers as settings,
    /// string arrays as lists (the whitelist).</summary>
    private static ConnectorRequest Read(JsonObject body)
    {
        string? kind = null, name = null;
        bool? enabled = null;
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        var lists = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (key, value) in body)
        {
            switch (key, value?.GetValueKind())
            {
                case ("kind", JsonValueKind.String):
                    kind = (string?)value;
                    break;
                case ("name", JsonValueKind.String):
                    name = (string?)value;
                    break;
                case ("enabled", JsonValueKind.True or JsonValueKind.False):
                    enabled = (bool)value!;
                    break;
                case ("kind" or "name" or "enabled", _):
                    throw new LoopValidationException(key, key == "enabled" ? "enabled must be true or false" : $"{key} must be a string");
                case (_, JsonValueKind.String or JsonValueKind.Number):
                    settings[key] = value!.GetValueKind() == JsonValueKind.String ? (string?)value : value.ToJsonString();
                    break;
                case (_, JsonValueKind.Null or null):
                    settings[key] = null;
                    break;
                case (_, JsonValueKind.Array) when value!.AsArray().All(v => v?.GetValueKind() is JsonValueKind.String or JsonValueKind.Number):
                    lists[key] = value.AsArray().Select(v => v!.GetValueKind() == JsonValueKind.String ? (string)v! : v.ToJsonString()).ToList();
                    break;
                default:
                    throw new LoopValidationException(key, $"{key} must be a string (or, for a whitelist, a list of strings)");
            }
        }
        return new ConnectorRequest(kind, name, enabled, settings, lists);
    }

    private static JsonObject ToJson(Connector c)
    {
        var spec = ConnectorSpec.For(c.Kind);
        var settings = new JsonObject();
        foreach (var (key, value) in c.Settings)
        {
            settings[key] = value;
        }
        var json = new JsonObject
        {
            ["id"] = c.Id,
            ["kind"] = ConnectorSpec.Wire(c.Kind),
            ["name"] = c.Name,
            ["enabled"] = c.Enabled,
            ["source"] = c.Source == ConnectorSource.Api ? "api" : "config",
            ["settings"] = settings,
            ["secrets_set"] = new JsonArray([.. c.SecretNames.Select(n => JsonValue.Create(n))]),
            ["status"] = new JsonObject
            {
                ["state"] = c.Enabled ? c.Status.State : "disabled",
                ["error"] = c.Status.Error,
                ["at"] = c.Status.At,
                ["node"] = c.Status.Node,
            },
            ["created_at"] = c.CreatedAt,
            ["updated_at"] = c.UpdatedAt,
        };
        if (spec.AllowedKey is { } allowedKey)
        {
            json[allowedKey] = new JsonArray([.. c.Allowed.Select(a => JsonValue.Create(a))]);
        }
        return json;
    }

    private static JsonObject KindJson(ConnectorSpec spec) => new()
    {
        ["kind"] = ConnectorSpec.Wire(spec.Kind),
        ["settings"] = new JsonArray([.. spec.Settings.Select(s => new JsonObject
        {
            ["name"] = s.Name,
            ["secret"] = s.IsSecret,
            ["required"] = s.Required,
            ["example"] = s.Example,
            ["help"] = s.Help,
            ["choices"] = s.Choices is null ? null : new JsonArray([.. s.Choices.Select(c => JsonValue.Create(c))]),
        })]),
        ["allowed_key"] = spec.AllowedKey,
        ["allowed_example"] = spec.AllowedKey is null ? null : spec.AllowedExample,
        // Set for the kinds whose owners and members mean something (GET/PUT /api/connectors/{id}/roles).
        ["roles_help"] = spec.RolesHelp,
    };
}
