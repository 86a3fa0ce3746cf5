//! FlightSQL over the same catalog as `/query`: basic-auth handshake (`anonymous` with an empty
//! password opens an anonymous session) or bearer tokens, statements, catalogs, schemas, tables.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTables,
    CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use base64::Engine;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};
use weir_function_runtime::Caller;

use crate::error::QueryError;
use crate::execute::{QueryEngine, QueryOptions};

pub const CATALOG: &str = "weir";
pub const SCHEMA: &str = "public";
const ANONYMOUS_TOKEN_PREFIX: &str = "anonymous-";

pub struct WeirFlightSql {
    engine: Arc<QueryEngine>,
    sessions: Mutex<HashSet<String>>,
    sql_info: SqlInfoData,
}

impl WeirFlightSql {
    pub fn new(engine: Arc<QueryEngine>) -> Self {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "Weir");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        Self {
            engine,
            sessions: Mutex::new(HashSet::new()),
            sql_info: info.build().expect("static sql info builds"),
        }
    }

    pub fn into_service(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
    }

    /// The caller of a request: anonymous without a token or with a handshake session token,
    /// otherwise whoever the platform's access policy says the bearer token belongs to.
    async fn authorize<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Ok(Caller::anonymous());
        };
        let value = value
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not text"))?;
        let Some(token) = value.strip_prefix("Bearer ") else {
            return Err(Status::unauthenticated(
                "expected a bearer token; use the handshake to get one",
            ));
        };
        if self.sessions.lock().expect("sessions lock").contains(token) {
            return Ok(Caller::anonymous());
        }
        self.engine
            .catalog
            .access
            .authenticate(Some(value))
            .await
            .map_err(|error| Status::unauthenticated(error.message))
    }
}

fn status(error: QueryError) -> Status {
    use QueryError::*;
    match error {
        InvalidSql(_)
        | UnknownTable(_)
        | NotReadOnly(_)
        | BlockNotFound { .. }
        | InvalidRequest(_)
        | MemoryLimit { .. }
        | TooManyRows { .. }
        | Execution(_)
        | LimitExceeded(_) => Status::invalid_argument(error.to_string()),
        DatasetNotFound(_) => Status::not_found(error.to_string()),
        Timeout { .. } => Status::deadline_exceeded(error.to_string()),
        Internal(_) => Status::internal(error.to_string()),
        Access(error) => match error.kind {
            weir_function_runtime::ErrorKind::Unauthenticated => {
                Status::unauthenticated(error.message)
            }
            weir_function_runtime::ErrorKind::Retryable => Status::unavailable(error.message),
            _ => Status::internal(error.message),
        },
    }
}

type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

fn stream_batch(
    schema: arrow::datatypes::SchemaRef,
    batch: Result<arrow::array::RecordBatch, arrow_flight::error::FlightError>,
) -> DoGetStream {
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async { batch }))
            .map_err(Status::from),
    )
}

fn info_for(
    descriptor: FlightDescriptor,
    schema: &arrow::datatypes::Schema,
    ticket: Vec<u8>,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|error| Status::internal(error.to_string()))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

#[tonic::async_trait]
impl FlightSqlService for WeirFlightSql {
    type FlightService = WeirFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("Basic ");
        let encoded = header
            .strip_prefix("Basic ")
            .ok_or_else(|| Status::unauthenticated("handshake expects basic authentication"))?;
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = lenient.decode(encoded.trim()).map_err(|error| {
            Status::unauthenticated(format!(
                "basic credentials `{encoded}` are not base64: {error}"
            ))
        })?;
        let credentials = String::from_utf8(decoded)
            .map_err(|_| Status::unauthenticated("credentials are not UTF-8"))?;
        let (user, password) = credentials
            .split_once(':')
            .unwrap_or((credentials.as_str(), ""));
        if !(user.is_empty() || user == "anonymous") || !password.is_empty() {
            // Account logins arrive with the control plane; until then only anonymous sessions.
            return Err(Status::unauthenticated("unknown user or wrong password"));
        }
        let token = format!(
            "{ANONYMOUS_TOKEN_PREFIX}{}",
            weir_odf::Multihash::sha3_256(
                format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes()
            )
            .to_multibase()
        );
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(token.clone());
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter(vec![Ok(reply)])));
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a valid header value"))?;
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authorize(&request).await?;
        let (stream, _) = self
            .engine
            .stream(
                &query.query,
                &QueryOptions {
                    caller,
                    ..Default::default()
                },
            )
            .await
            .map_err(status)?;
        let schema = stream.schema();
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        info_for(
            request.into_inner(),
            &schema,
            ticket.as_any().encode_to_vec(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request).await?;
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("statement handle is not UTF-8"))?;
        let output = self
            .engine
            .execute(
                &sql,
                &QueryOptions {
                    caller,
                    ..Default::default()
                },
            )
            .await
            .map_err(status)?;
        let batches = futures::stream::iter(output.batches.into_iter().map(Ok));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(output.schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request).await?;
        let schema = query.into_builder().schema();
        info_for(
            request.into_inner(),
            &schema,
            query.as_any().encode_to_vec(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request).await?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        let schema = builder.schema();
        Ok(Response::new(stream_batch(schema, builder.build())))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request).await?;
        let schema = query.clone().into_builder().schema();
        info_for(
            request.into_inner(),
            &schema,
            query.as_any().encode_to_vec(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authorize(&request).await?;
        let mut builder = query.into_builder();
        builder.append(CATALOG, SCHEMA);
        let schema = builder.schema();
        Ok(Response::new(stream_batch(schema, builder.build())))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authorize(&request).await?;
        let schema = query.clone().into_builder().schema();
        info_for(
            request.into_inner(),
            &schema,
            query.as_any().encode_to_vec(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.authorize(&request).await?;
        let include_schema = query.include_schema;
        let aliases = self
            .engine
            .catalog
            .store
            .list_aliases()
            .await
            .map_err(|error| Status::internal(error.to_string()))?;
        let mut builder = query.into_builder();
        for (alias, id) in aliases {
            if self
                .engine
                .catalog
                .check_read(&caller, &alias, &id)
                .await
                .is_err()
            {
                continue;
            }
            let table_schema = if include_schema {
                match self.engine.catalog.source(&alias, &id, None).await {
                    Ok(source) => source.schema.as_ref().clone(),
                    Err(_) => arrow::datatypes::Schema::empty(),
                }
            } else {
                arrow::datatypes::Schema::empty()
            };
            builder
                .append(CATALOG, SCHEMA, alias.to_string(), "TABLE", &table_schema)
                .map_err(Status::from)?;
        }
        let schema = builder.schema();
        Ok(Response::new(stream_batch(schema, builder.build())))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        info_for(
            request.into_inner(),
            &schema,
            query.as_any().encode_to_vec(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.sql_info);
        let schema = builder.schema();
        Ok(Response::new(stream_batch(schema, builder.build())))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Serves FlightSQL on `address` until the future is dropped.
pub async fn serve_flightsql(
    engine: Arc<QueryEngine>,
    listener: tokio::net::TcpListener,
) -> Result<(), String> {
    let incoming = tokio_stream_from(listener);
    tonic::transport::Server::builder()
        .add_service(WeirFlightSql::new(engine).into_service())
        .serve_with_incoming(incoming)
        .await
        .map_err(|error| format!("flightsql server failed: {error}"))
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}
