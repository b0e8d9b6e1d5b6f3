namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

/// <summary>
/// The REST API described: its OpenAPI document at <see cref="DocumentPath"/>, made from the
/// endpoints' own metadata (each states its body and answers), and a reference page to read and try
/// it at <see cref="PagePath"/> (Scalar, whose script the daemon serves itself: no CDN, no fonts or
/// telemetry from elsewhere). Both are for users of the daemon (<see cref="ApiCallers"/>).
/// </summary>
public static class ApiReference
{
    public const string DocumentPath = "/openapi/v1.json";
    public const string PagePath = "/scalar";

    private const string Description =
        "The REST API of a Loop daemon. Every endpoint but `GET /api/health`, `GET /api/auth/status`, " +
        "`POST /api/auth/setup` and `POST /api/auth/login` needs a login: the `loop_session` cookie the login sets, " +
        "or a token as `Authorization: Bearer <token>` (the login's token, an API token, or the local token the daemon " +
        "writes to `~/.loop/secrets/local-token`). Errors are problem details (RFC 9457) that name the field at fault.";

    private const string Problem = "ProblemDetails";

    // The sections of the reference, one per first segment of the path, as the README has them.
    private static readonly Dictionary<string, string> Areas = new(StringComparer.Ordinal)
    {
        ["health"] = "Whether the daemon and its parts are up",
        ["auth"] = "The admin account, logins and API tokens",
        ["channels"] = "Channels (a project directory or a chat), their messages, runs, tokens and templates",
        ["runs"] = "Agent runs",
        ["tasks"] = "Scheduled and loop tasks",
        ["templates"] = "Task templates from the config",
        ["connectors"] = "Chat platform accounts Loop listens on",
        ["usage"] = "Tokens and cost of finished runs",
        ["runtime"] = "What the daemon is doing now",
        ["cluster"] = "The nodes of the cluster",
        ["events"] = "The live feed",
    };

    public static void Configure(IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddOperationTransformer(DescribeOperation);
            // Runs once the operations are described.
            options.AddDocumentTransformer(DescribeDocumentAsync);
        });

    private static Task DescribeOperation(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (AreaOf(context.Description.RelativePath) is { } area)
        {
            operation.Tags = new HashSet<OpenApiTagReference> { new(area, context.Document) };
        }
        // Every endpoint refuses in the same way (ApiErrors): said once, not at each endpoint.
        operation.Responses ??= [];
        operation.Responses["4XX"] = new OpenApiResponse
        {
            Description = "Problem details (RFC 9457): what is wrong and, for a bad field, its name (errors)",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(Problem, context.Document) },
            },
        };
        return Task.CompletedTask;
    }

    private static async Task DescribeDocumentAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info = new OpenApiInfo { Title = "Loop", Version = LoopVersion.Current, Description = Description };
        document.Tags = new HashSet<OpenApiTag>(document.Paths.Keys
            .Select(path => AreaOf(path.TrimStart('/')))
            .OfType<string>()
            .Distinct()
            .Order(StringComparer.Ordinal)
            .Select(area => new OpenApiTag { Name = area, Description = Areas.GetValueOrDefault(area) }));
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        document.Components.Schemas[Problem] = await context.GetOrCreateSchemaAsync(typeof(HttpValidationProblemDetails), null, cancellationToken);
        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>
        {
            ["token"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "An API token, the local token, or a login's token",
            },
            ["session"] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Cookie,
                Name = ApiCallers.SessionCookie,
                Description = "The dashboard's login",
            },
        };
        document.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("token", document)] = [] },
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("session", document)] = [] },
        ];
    }

    /// <summary>Describes the JSON body an endpoint reads itself (<see cref="ApiErrors.ReadBodyAsync"/>). Not
    /// <c>.Accepts</c>: routing would then turn away other content types itself, with a bare 404 or 415,
    /// before ApiErrors can say what to send.</summary>
    public static RouteHandlerBuilder JsonBody<T>(this RouteHandlerBuilder builder) =>
        builder.AddOpenApiOperationTransformer(async (operation, context, cancellationToken) =>
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(typeof(T), null, cancellationToken) },
                },
            });

    /// <summary>"channels" for api/channels/{id}/messages; null outside /api.</summary>
    private static string? AreaOf(string? relativePath) =>
        (relativePath ?? "").Split('/') is ["api", var area, ..] ? area : null;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference(PagePath, options => options
            .WithTitle("Loop API")
            .WithOpenApiRoutePattern(DocumentPath)
            // Everything from the daemon itself: Inter and JetBrains Mono come from a CDN, telemetry, the AI
            // agent and MCP from Scalar's servers, and the developer toolbar offers to share the document there.
            .DisableDefaultFonts()
            .DisableTelemetry()
            .DisableAgent()
            .DisableMcp()
            .HideDeveloperTools());
    }

    /// <summary>Whether the request is for the reference page or the document, which only users read.</summary>
    public static bool IsReference(HttpRequest request) =>
        request.Path.StartsWithSegments(PagePath) || request.Path.StartsWithSegments("/openapi");

    /// <summary>The reference page itself, as a browser asks for it (not its script or the document).</summary>
    public static bool IsPageNavigation(HttpRequest request) =>
        request.Path.StartsWithSegments(PagePath) && HttpMethods.IsGet(request.Method)
        && request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);
}
