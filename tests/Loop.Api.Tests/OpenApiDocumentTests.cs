namespace Loop.Api.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>/openapi/v1.json: what a client generator or a person reads about the API, checked
/// against what the running node routes and answers.</summary>
[Collection(ApiNodeCollection.Name)]
public sealed class OpenApiDocumentTests(ApiNode node)
{
    [Fact]
    public async Task The_document_lists_every_route_of_the_api_and_no_other()
    {
        var document = await DocumentAsync();
        var described = document["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Select(operation => $"{operation.Key.ToUpperInvariant()} {path.Key}"))
            .ToHashSet(StringComparer.Ordinal);

        // What the node routes under /api, from its own route table; the catch-all that answers
        // unknown paths with 404 is no endpoint of the API.
        var routed = node.Host.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api/", StringComparison.Ordinal) == true
                && !e.RoutePattern.Parameters.Any(p => p.IsCatchAll))
            .SelectMany(e => e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods.Select(m => $"{m} {e.RoutePattern.RawText}")
                ?? throw new Xunit.Sdk.XunitException($"{e.RoutePattern.RawText} answers every method"))
            .ToHashSet(StringComparer.Ordinal);

        Assert.True(routed.Count > 40, $"the route table has only {routed.Count} API routes");
        Assert.Empty(routed.Except(described).Order());
        Assert.Empty(described.Except(routed).Order());

        // Each says what it does and what it answers (an endpoint's .WithSummary and .Produces).
        var undescribed = document["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Select(operation => (Name: $"{operation.Key.ToUpperInvariant()} {path.Key}", Operation: operation.Value!)))
            .Where(o => string.IsNullOrWhiteSpace((string?)o.Operation["summary"])
                || !o.Operation["responses"]!.AsObject().Any(r => r.Key == "204" || r.Key.StartsWith('2') && r.Value!["content"] is not null))
            .Select(o => o.Name);
        Assert.Empty(undescribed);
    }

    [Fact]
    public async Task Each_operation_says_what_it_takes_and_answers_in_the_names_the_json_has()
    {
        var document = await DocumentAsync();

        var createChannel = document["paths"]!["/api/channels"]!["post"]!;
        Assert.False(string.IsNullOrWhiteSpace((string?)createChannel["summary"]));
        Assert.Equal(["channels"], createChannel["tags"]!.AsArray().Select(t => (string)t!));
        var request = Properties(document, createChannel["requestBody"]!["content"]!["application/json"]!["schema"]!);
        Assert.Equal(["dir_path", "mode", "model", "name"], request.Order());

        // The shape described is the shape answered: a real channel's keys, and a real task's.
        using var created = await node.User.PostAsJsonAsync("/api/channels", new { name = "described" });
        var channel = await ReadAsync(created, HttpStatusCode.Created, HttpStatusCode.OK);
        Assert.Equal(channel.Select(p => p.Key).Order(), Properties(document, Schema(createChannel, "201")).Order());
        Assert.Equal(channel.Select(p => p.Key).Order(), Properties(document, Schema(createChannel, "200")).Order());

        using var taskCreated = await node.User.PostAsJsonAsync("/api/tasks", new
        {
            channel_id = (string)channel["id"]!,
            name = "yearly",
            prompt = "say hello",
            type = "cron",
            schedule = "0 0 1 1 *",
        });
        var task = await ReadAsync(taskCreated, HttpStatusCode.Created);
        var getTask = document["paths"]!["/api/tasks/{id}"]!["get"]!;
        var taskProperties = Properties(document, Schema(getTask, "200"));
        Assert.Equal(task.Select(p => p.Key).Order(), taskProperties.Order());
        Assert.Contains("next_run_at", taskProperties);
        Assert.Contains("completion_promise", taskProperties);

        var newTask = Properties(document, document["paths"]!["/api/tasks"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!);
        Assert.Contains("channel_id", newTask);
        Assert.Contains("max_iterations", newTask);

        // A message is answered 202, and failures are problem details.
        var postMessage = document["paths"]!["/api/channels/{id}/messages"]!["post"]!;
        Assert.Equal(["author", "content"], Properties(document, postMessage["requestBody"]!["content"]!["application/json"]!["schema"]!).Order());
        Assert.Contains("channel_id", Properties(document, Schema(postMessage, "202")));
        Assert.NotNull(postMessage["responses"]!["4XX"]!["content"]!["application/problem+json"]);
    }

    [Fact]
    public async Task Only_users_read_the_document()
    {
        using var anonymous = node.Anonymous();
        using var refused = await anonymous.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.DoesNotContain("/api/channels", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var created = await node.User.PostAsJsonAsync("/api/channels", new { name = "tokened" });
        var channelId = (string)(await ReadAsync(created, HttpStatusCode.Created, HttpStatusCode.OK))["id"]!;
        var token = (string)(await node.User.GetFromJsonAsync<JsonObject>($"/api/channels/{channelId}/token"))!["token"]!;
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using var forbidden = await anonymous.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);

        using var browser = await node.LoggedInBrowserAsync();
        using var allowed = await browser.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    private async Task<JsonObject> DocumentAsync()
    {
        using var response = await node.User.GetAsync("/openapi/v1.json");
        return await ReadAsync(response, HttpStatusCode.OK);
    }

    private static async Task<JsonObject> ReadAsync(HttpResponseMessage response, params HttpStatusCode[] expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected.Contains(response.StatusCode), $"{response.RequestMessage?.RequestUri}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private static JsonNode Schema(JsonNode operation, string status) =>
        operation["responses"]![status]!["content"]!["application/json"]!["schema"]!;

    /// <summary>The property names of a schema, following its $ref into the components.</summary>
    private static List<string> Properties(JsonObject document, JsonNode schema)
    {
        if (schema["$ref"] is { } reference)
        {
            var name = ((string)reference!).Split('/')[^1];
            schema = document["components"]!["schemas"]![name]!;
        }
        return schema["properties"]!.AsObject().Select(p => p.Key).ToList();
    }
}
